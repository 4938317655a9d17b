/**
 * The JSON paths masking rules select with: a small, predictable subset of JSONPath.
 *   $.a.b        member b of member a
 *   $.a[0]       first element;  $.a[*] or $.a.*  every element or member
 *   $..ssn       member ssn at any depth
 *   $['odd key'] a member whose name is not an identifier
 */
export type JsonPathStep =
  | { readonly kind: 'member'; readonly name: string }
  | { readonly kind: 'index'; readonly index: number }
  | { readonly kind: 'any' }
  | { readonly kind: 'descendant'; readonly name: string };

export type JsonPath = readonly JsonPathStep[];

export function parseJsonPath(path: string): JsonPath {
  const fail = (why: string): never => {
    throw new SyntaxError(`json_path '${path}' ${why}; write it like $.customer.email, $.items[*].card or $..ssn`);
  };
  if (!path.startsWith('$')) fail('must start with $');
  const steps: JsonPathStep[] = [];
  let i = 1;
  const identifier = /[A-Za-z_][A-Za-z0-9_-]*/y;
  while (i < path.length) {
    if (path.startsWith('..', i)) {
      identifier.lastIndex = i + 2;
      const m = identifier.exec(path);
      if (!m) fail(`has '..' without a member name at offset ${i}`);
      steps.push({ kind: 'descendant', name: m![0] });
      i = identifier.lastIndex;
    } else if (path[i] === '.') {
      if (path[i + 1] === '*') {
        steps.push({ kind: 'any' });
        i += 2;
        continue;
      }
      identifier.lastIndex = i + 1;
      const m = identifier.exec(path);
      if (!m) fail(`has '.' without a member name at offset ${i}`);
      steps.push({ kind: 'member', name: m![0] });
      i = identifier.lastIndex;
    } else if (path[i] === '[') {
      const close = path.indexOf(']', i);
      if (close < 0) fail(`has an unclosed '[' at offset ${i}`);
      const inner = path.slice(i + 1, close).trim();
      if (inner === '*') steps.push({ kind: 'any' });
      else if (/^\d+$/.test(inner)) steps.push({ kind: 'index', index: Number(inner) });
      else if (/^'[^']*'$|^"[^"]*"$/.test(inner)) steps.push({ kind: 'member', name: inner.slice(1, -1) });
      else fail(`has '[${inner}]'; use [n], [*] or ['name']`);
      i = close + 1;
    } else {
      fail(`has an unexpected '${path[i]}' at offset ${i}`);
    }
  }
  if (steps.length === 0) fail('selects the whole document; use a column rule for that');
  return steps;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Replaces every value the path selects, in place, with `mask(value)` (a string, or null for the
 * null strategy). Objects and arrays selected are masked whole, as their JSON text. Returns how
 * many values were replaced.
 */
export function maskJsonPath(root: Json, path: JsonPath, mask: (value: string) => string | null): number {
  let count = 0;
  const maskValue = (value: Json): Json => {
    count++;
    return mask(typeof value === 'string' ? value : JSON.stringify(value));
  };
  const visit = (node: Json, step: number, assign: (value: Json) => void): void => {
    if (step === path.length) {
      assign(maskValue(node));
      return;
    }
    const s = path[step]!;
    if (node === null || typeof node !== 'object') {
      return;
    }
    switch (s.kind) {
      case 'member':
        if (!Array.isArray(node) && Object.hasOwn(node, s.name)) visit(node[s.name]!, step + 1, (v) => (node[s.name] = v));
        return;
      case 'index':
        if (Array.isArray(node) && s.index < node.length) visit(node[s.index]!, step + 1, (v) => (node[s.index] = v));
        return;
      case 'any':
        if (Array.isArray(node)) node.forEach((child, k) => visit(child, step + 1, (v) => (node[k] = v)));
        else for (const key of Object.keys(node)) visit(node[key]!, step + 1, (v) => (node[key] = v));
        return;
      case 'descendant': {
        // The member at this level, then the same search below every child (not below the match: it is masked whole).
        if (!Array.isArray(node) && Object.hasOwn(node, s.name)) {
          visit(node[s.name]!, step + 1, (v) => (node[s.name] = v));
        }
        const children: [string | number, Json][] = Array.isArray(node) ? node.map((c, k) => [k, c]) : Object.entries(node).filter(([k]) => k !== s.name);
        for (const [, child] of children) visit(child, step, () => undefined);
        return;
      }
    }
  };
  visit(root, 0, () => undefined);
  return count;
}

export type { Json };
