#!/usr/bin/env node
// The workspace's `tracegate` command. npm links it into node_modules/.bin, so `npx tracegate`
// and npm scripts run it on the project's pinned Node 24.
import { existsSync } from 'node:fs';
const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('tracegate is not built yet: run `npm run build` (or `npm start`, which builds first).\n');
  process.exit(1);
}
await import(main.href);
