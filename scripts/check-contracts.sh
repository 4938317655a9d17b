#!/usr/bin/env bash
# Contracts are committed generated code (reviewable in diffs, no codegen at install time).
# This check lints the protos and regenerates: any difference means someone edited a .proto
# without regenerating, or edited generated code by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd proto && buf lint && buf generate)
changes=$(git status --porcelain -- libs/contracts/src/generated)
if [ -n "$changes" ]; then
  echo "generated contracts are out of date with proto/:" >&2
  echo "$changes" >&2
  echo "run 'npm run contracts:generate' and commit the result." >&2
  exit 1
fi
echo "contracts: buf lint clean, generated code up to date"
