import { createRequire } from 'node:module';
import { STATEMENT_FLAGS, type StatementAnalysis, type StatementFlag } from './sql-analysis.js';

/**
 * What a shell command line (an SSH exec request) does, as a real shell parser sees it
 * (mvdan/sh, compiled to JS): commands and their arguments through pipes, `&&`, `||`, `;`,
 * subshells, `$(…)`, function bodies and control flow; through wrappers (`sudo`, `env`, `nice`,
 * `timeout`, `xargs`, `find -exec`…); and into `sh -c '…'` / `bash -c` / `eval '…'` scripts, parsed
 * again. Quoting does not hide a word: `r''m`, `"rm"`, `\rm`, `/bin/rm` and `$'\x72m'` are all rm.
 * A command whose program, or whose script, is chosen at run time cannot be known: it is opaque.
 */

/**
 * A node of mvdan/sh's syntax tree (pkg.go.dev/mvdan.cc/sh/v3/syntax) as a plain object: `type`
 * is the Go type's name (CallExpr, Word, Lit…), the other fields are the Go struct's, with
 * positions left out and nil pointers absent.
 */
interface ShNode {
  readonly type: string;
  readonly [field: string]: unknown;
}
interface ShWord extends ShNode {
  readonly Parts: readonly ShNode[];
}
interface ShSyntax {
  NewParser(): { Parse(source: string, name: string): { readonly __internal_object__: unknown } };
}

const require = createRequire(import.meta.url);
let parser: ReturnType<ShSyntax['NewParser']> | undefined;

/** Loads the shell parser (about 90 ms, once); analyseShellCommand loads it on first use too. */
export function loadShellParser(): void {
  parser ??= (require('mvdan-sh') as { syntax: ShSyntax }).syntax.NewParser();
}

/** A GopherJS value as the Go runtime holds it: slices, pointers to structs, scalars. */
interface GoValue {
  readonly constructor: { readonly string?: string; readonly nil?: unknown };
  readonly $array?: readonly unknown[];
  readonly $offset?: number;
  readonly $length?: number;
  readonly [field: string]: unknown;
}

/**
 * Copies the parsed tree out of the Go runtime into plain objects, once. The package's JS API
 * wraps every field read (and syntax.Walk every node) in a fresh deep conversion: 1.2 ms and about
 * 1 MB of garbage to walk a ten-node command. Reading the Go values directly costs a few µs. This
 * reads GopherJS's representation (slices as {$array, $offset, $length}; pointers as objects
 * whose constructor names the Go type, nil as the type's `nil`), which mvdan-sh 0.10 is pinned to.
 */
function plainTree(value: unknown): unknown {
  if (value === null || value === undefined || typeof value !== 'object') return value;
  const go = value as GoValue;
  if (go.$array !== undefined && go.$length !== undefined) {
    const out: unknown[] = [];
    for (let i = 0; i < go.$length; i++) out.push(plainTree(go.$array[(go.$offset ?? 0) + i]));
    return out;
  }
  const typeName = go.constructor.string;
  if (typeName === undefined || !typeName.startsWith('*syntax.') || value === go.constructor.nil) return undefined;
  const node: Record<string, unknown> = { type: typeName.slice('*syntax.'.length) };
  for (const key of Object.keys(go)) {
    if (key === '$val') continue;
    const field = go[key];
    // Positions (syntax.Pos values) and nil pointers carry nothing the analysis reads.
    if (field !== null && typeof field === 'object' && (field as GoValue).$array === undefined && !(field as GoValue).constructor.string?.startsWith('*syntax.')) continue;
    const converted = plainTree(field);
    if (converted !== undefined) node[key] = converted;
  }
  return node;
}

/** Visits a node and everything below it, depth first in source order; `visit` returns false to stop descending. */
function walkTree(node: unknown, visit: (node: ShNode) => boolean): void {
  if (Array.isArray(node)) {
    for (const item of node) walkTree(item, visit);
    return;
  }
  if (node === null || typeof node !== 'object' || typeof (node as ShNode).type !== 'string') return;
  if (!visit(node as ShNode)) return;
  for (const [key, field] of Object.entries(node)) if (key !== 'type' && typeof field === 'object') walkTree(field, visit);
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'busybox-sh', 'fish']);
const INTERPRETERS: Readonly<Record<string, readonly string[]>> = {
  python: ['-c'],
  python2: ['-c'],
  python3: ['-c'],
  perl: ['-e', '-E'],
  ruby: ['-e'],
  node: ['-e', '--eval', '-p', '--print'],
  php: ['-r'],
  lua: ['-e'],
  awk: [],
};
const DOWNLOADERS = new Set(['curl', 'wget', 'fetch', 'nc', 'ncat', 'socat', 'aria2c']);
const POWER_PROGRAMS = new Set(['shutdown', 'reboot', 'halt', 'poweroff', 'kexec']);
const FORMAT_PROGRAMS = /^(mkfs(\..+)?|mke2fs|mkswap|mkdosfs|mkntfs|wipefs|fdisk|sfdisk|cfdisk|gdisk|sgdisk|parted|blkdiscard)$/;
const PRIVILEGE_PROGRAMS = new Set(['sudo', 'su', 'doas', 'pkexec', 'runuser']);
/** Directories whose loss (or world-writability) breaks the machine. */
const SYSTEM_DIRECTORIES = new Set(
  ['bin', 'boot', 'dev', 'etc', 'home', 'lib', 'lib32', 'lib64', 'opt', 'proc', 'root', 'sbin', 'srv', 'sys', 'usr', 'var', 'run', 'mnt', 'media'].map(
    (d) => `/${d}`,
  ),
);
/** Block devices and memory: writing them bypasses every file system. */
const RAW_DEVICE = /^\/dev\/(sd|hd|vd|xvd|nvme|mmcblk|md|dm-|loop|mapper\/|disk\/|mem$|kmem$|port$)/;

/** mvdan/sh's RedirOperator values that write to the named file: > >> <> >| &> &>> */
const WRITING_REDIRECTS = new Set([54, 55, 57, 60, 64, 65]);
/** RedirOperator values that feed a command's stdin from the line itself: << <<- <<< */
const HEREDOC = 61;
const DASH_HEREDOC = 62;
const HERE_STRING = 63;
/** BinOpCmd values for | and |& */
const PIPES = new Set([12, 13]);

/** A word's value when it is the same whatever runs it; undefined when expansion decides it. */
function staticWord(word: ShWord | undefined): string | undefined {
  if (!word) return undefined;
  let out = '';
  for (const part of word.Parts) {
    const value = staticPart(part, false);
    if (value === undefined) return undefined;
    out += value;
  }
  return out;
}

function staticPart(part: ShNode, inDoubleQuotes: boolean): string | undefined {
  switch (part.type) {
    case 'Lit':
      return unescapeLiteral(String(part.Value), inDoubleQuotes);
    case 'SglQuoted':
      return part.Dollar ? decodeAnsiC(String(part.Value)) : String(part.Value);
    case 'DblQuoted': {
      let out = '';
      for (const inner of part.Parts as readonly ShNode[]) {
        const value = staticPart(inner, true);
        if (value === undefined) return undefined;
        out += value;
      }
      return out;
    }
    default:
      // $VAR, $(…), $((…)), <(…), globs with extended patterns: known only when it runs.
      return undefined;
  }
}

function unescapeLiteral(raw: string, inDoubleQuotes: boolean): string {
  if (inDoubleQuotes) return raw.replace(/\\([\\$`"])/g, '$1').replace(/\\\n/g, '');
  return raw.replace(/\\\n/g, '').replace(/\\(.)/g, '$1');
}

/** $'…' strings: \xHH, \NNN, \uHHHH and the C escapes. */
function decodeAnsiC(raw: string): string {
  const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };
  return raw.replace(/\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (/^[xuU]/.test(e) && e.length > 1) return String.fromCodePoint(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return simple[e] ?? `\\${e}`;
  });
}

/** `/{etc,usr}` is two paths: brace expansion, one level at a time, at most 64 results. */
function expandBraces(word: string): string[] {
  const match = /\{([^{}]*,[^{}]*)\}/.exec(word);
  if (!match) return [word];
  const out: string[] = [];
  for (const choice of match[1]!.split(',')) {
    for (const expanded of expandBraces(word.slice(0, match.index) + choice + word.slice(match.index + match[0].length))) {
      if (out.length < 64) out.push(expanded);
    }
  }
  return out;
}

function basename(program: string): string {
  return program.slice(program.lastIndexOf('/') + 1);
}

/**
 * True for `/`, `/*`, `/.`, `~`, a top-level system directory (or everything in it), or a
 * top-level glob: what `rm -r` or `chmod -R` must never be pointed at.
 */
function isSystemPath(path: string): boolean {
  if (path === '~' || path === '~/' || path === '~/*' || path === '~/.') return true;
  let p = path.replace(/\/+/g, '/').replace(/(\/\.)+$/, '');
  if (p.length > 1) p = p.replace(/\/\*?$/, '');
  if (p === '' || p === '/' || p === '/*') return true;
  if (!p.startsWith('/')) return false;
  if (SYSTEM_DIRECTORIES.has(p)) return true;
  // A glob at the top level (/e*, /?sr) may match any system directory.
  return /^\/[^/]*[*?[][^/]*$/.test(p);
}

/** A command about to be judged: the program and its arguments (undefined: chosen at run time). */
interface Invocation {
  readonly program: string;
  readonly args: readonly (string | undefined)[];
  /** The argument words, for looking into `$(…)` and `<(…)` that a shell runs as its script. */
  readonly words: readonly ShWord[];
}

class ShellWalker {
  readonly programs: string[] = [];
  readonly flags = new Set<StatementFlag>();
  readonly writes = new Set<string>();
  opaqueReason = '';
  /**
   * The directory a `cd` earlier in the line moved to, when it is a system path: `cd / && rm -rf *`
   * deletes /*. Calls are visited in source order, which is close enough to run order here.
   */
  private cwd: string | undefined;

  constructor(private readonly depth: number) {}

  /** An operand as the path it names: relative ones against a system-path `cd` before it. */
  private resolve(path: string | undefined): string | undefined {
    if (path === undefined || this.cwd === undefined || path.startsWith('/') || path.startsWith('~')) return path;
    return `${this.cwd}/${path}`;
  }

  flag(flag: StatementFlag): void {
    this.flags.add(flag);
  }

  opaque(flag: StatementFlag, reason: string): void {
    this.flags.add(flag);
    if (!this.opaqueReason) this.opaqueReason = reason;
  }

  walkFile(file: ShNode): void {
    const functions = new Map<string, ShNode>();
    walkTree(file, (node) => {
      switch (node.type) {
        case 'CallExpr':
          this.call(node);
          break;
        case 'Stmt':
          this.redirects(node);
          break;
        case 'BinaryCmd':
          if (PIPES.has(Number(node.Op))) this.pipe(node);
          break;
        case 'FuncDecl':
          functions.set(String((node.Name as ShNode).Value), node);
          break;
        default:
          break;
      }
      return true;
    });
    for (const [name, declaration] of functions) {
      // A function that calls itself is the shape of a fork bomb (:(){ :|:& };:), and nothing
      // bounds its recursion; a one-line command has no need of one.
      let recursive = false;
      walkTree(declaration.Body, (node) => {
        if (node.type === 'CallExpr' && staticWord((node.Args as ShWord[] | undefined)?.[0]) === name) recursive = true;
        return !recursive;
      });
      if (recursive) this.flag('fork_bomb');
    }
  }

  private redirects(stmt: ShNode): void {
    const redirects = (stmt.Redirs as readonly ShNode[] | undefined) ?? [];
    this.scriptFromHereDocument(stmt, redirects);
    for (const redirect of redirects) {
      if (!WRITING_REDIRECTS.has(Number(redirect.Op))) continue;
      const target = staticWord(redirect.Word as ShWord);
      if (target === undefined) continue;
      this.writes.add(target);
      if (RAW_DEVICE.test(target)) this.flag('raw_device_write');
    }
  }

  /** `bash <<EOF … EOF`, `sh <<< '…'`: the script is on the line, so it is read like `sh -c`. */
  private scriptFromHereDocument(stmt: ShNode, redirects: readonly ShNode[]): void {
    const command = stmt.Cmd as ShNode | undefined;
    if (command?.type !== 'CallExpr') return;
    const invocation = unwrap(invocationOf(command));
    if (!invocation || !readsScriptFromStdin(invocation)) return;
    for (const redirect of redirects) {
      const op = Number(redirect.Op);
      if (op !== HEREDOC && op !== DASH_HEREDOC && op !== HERE_STRING) continue;
      const script = staticWord((op === HERE_STRING ? redirect.Word : redirect.Hdoc) as ShWord | undefined);
      if (script === undefined) this.opaque('inline_code', `${invocation.program} runs a script chosen at run time`);
      else if (SHELLS.has(invocation.program)) this.script(script, `${invocation.program} <<`);
      else this.opaque('inline_code', `${invocation.program} runs code from a here-document, which tracegate cannot read`);
    }
  }

  private pipe(binary: ShNode): void {
    const upstream = new Set<string>();
    walkTree((binary.X as ShNode).Cmd, (node) => {
      if (node.type === 'CallExpr') {
        const program = staticWord((node.Args as ShWord[] | undefined)?.[0]);
        if (program !== undefined) upstream.add(basename(program));
      }
      return true;
    });
    const downstream = (binary.Y as ShNode).Cmd as ShNode | undefined;
    if (downstream?.type !== 'CallExpr') return;
    const invocation = unwrap(invocationOf(downstream));
    if (!invocation || !readsScriptFromStdin(invocation)) return;
    if ([...upstream].some((program) => DOWNLOADERS.has(program))) {
      this.opaque('remote_code_execution', `${invocation.program} runs a script downloaded by ${[...upstream].filter((p) => DOWNLOADERS.has(p)).join(', ')}`);
    } else {
      this.opaque('inline_code', `${invocation.program} runs a script read from its input, which tracegate cannot see`);
    }
  }

  private call(call: ShNode): void {
    const invocation = invocationOf(call);
    if (!invocation) {
      // Assignments alone (`X=1`) run nothing; a command word chosen at run time is unknowable.
      if (((call.Args as readonly ShWord[] | null) ?? []).length > 0) this.opaque('dynamic_command', 'the program to run is chosen at run time');
      return;
    }
    this.judge(invocation);
  }

  /** One program with its arguments, after any wrapper has been looked through. */
  private judge(invocation: Invocation, viaXargs = false): void {
    const { program, args } = invocation;
    this.programs.push(program);
    if (PRIVILEGE_PROGRAMS.has(program)) this.flag('privilege_escalation');
    const wrapped = unwrapOnce(invocation);
    if (wrapped === null) {
      this.opaque('dynamic_command', `the program ${program} runs is chosen at run time`);
      return;
    }
    if (wrapped) {
      this.judge(wrapped, viaXargs || program === 'xargs');
      return;
    }
    const known = args.filter((a): a is string => a !== undefined);
    const expanded = known.flatMap(expandBraces);
    const options = new Set<string>();
    let endOfOptions = false;
    const operands: (string | undefined)[] = [];
    for (const arg of args) {
      if (arg === undefined) operands.push(undefined);
      else if (!endOfOptions && arg === '--') endOfOptions = true;
      else if (!endOfOptions && arg.startsWith('--')) options.add(arg);
      else if (!endOfOptions && arg.startsWith('-') && arg.length > 1) for (const letter of arg.slice(1)) options.add(`-${letter}`);
      else operands.push(...expandBraces(arg));
    }
    const recursive = options.has('-r') || options.has('-R') || options.has('--recursive');

    if (SHELLS.has(program) || program === 'source' || program === '.') this.shell(invocation);
    else if (program in INTERPRETERS) {
      const inline = INTERPRETERS[program]!;
      if (args.some((a) => a !== undefined && inline.some((flag) => a === flag || a.startsWith(`${flag}=`) || (flag.length === 2 && a.startsWith('-') && !a.startsWith('--') && a.includes(flag[1]!)))))
        this.opaque('inline_code', `${program} runs code given on its command line, which tracegate cannot read`);
      else if (program === 'awk' && known.some((a) => /system\s*\(|\|\s*"|"\s*\|/.test(a))) this.opaque('inline_code', 'awk runs shell commands from its program');
    } else if (program === 'eval') {
      if (args.some((a) => a === undefined)) this.opaque('inline_code', 'eval runs a script chosen at run time');
      else this.script(known.join(' '), 'eval');
    } else if (program === 'cd' || program === 'pushd') {
      const to = operands[0] === undefined && operands.length > 0 ? undefined : (operands[0] ?? '~');
      this.cwd = to !== undefined && isSystemPath(this.resolve(to)!) ? this.resolve(to) : undefined;
    } else if (program === 'rm') {
      const dangerous = operands.some((p) => p === undefined || isSystemPath(this.resolve(p)!));
      if (options.has('--no-preserve-root') || (recursive && (dangerous || (viaXargs && operands.length === 0)))) this.flag('destructive_delete');
    } else if (program === 'find') {
      const firstExpression = args.findIndex((a) => a !== undefined && (a.startsWith('-') || a === '(' || a === '!'));
      const starts = (firstExpression < 0 ? args : args.slice(0, firstExpression)).flatMap((a) => (a === undefined ? [undefined] : expandBraces(a)));
      if (starts.length === 0) starts.push('.');
      const deletes = known.includes('-delete');
      const execAt = known.findIndex((a) => a === '-exec' || a === '-execdir' || a === '-ok' || a === '-okdir');
      if (deletes && starts.some((p) => p === undefined || isSystemPath(p))) this.flag('destructive_delete');
      if (execAt >= 0) {
        const rest = args.slice(args.indexOf(known[execAt]) + 1);
        const end = rest.findIndex((a) => a === ';' || a === '+');
        const command = end >= 0 ? rest.slice(0, end) : rest;
        const [inner, ...innerArgs] = command;
        if (inner === undefined) this.opaque('dynamic_command', 'find -exec runs a program chosen at run time');
        else {
          // {} stands for every file found under the start points.
          const substituted = innerArgs.map((a) => (a === '{}' ? (starts.find((p) => p === undefined || isSystemPath(p)) ?? '{}') : a));
          this.judge({ program: basename(inner), args: substituted, words: [] }, true);
        }
      }
    } else if (FORMAT_PROGRAMS.test(program)) this.flag('filesystem_format');
    else if (program === 'dd') {
      for (const arg of expanded) {
        if (arg.startsWith('of=')) {
          const target = arg.slice(3);
          this.writes.add(target);
          if (RAW_DEVICE.test(target)) this.flag('raw_device_write');
        }
      }
    } else if (program === 'tee' || program === 'cp' || program === 'mv' || program === 'install' || program === 'shred') {
      const targets = program === 'tee' || program === 'shred' ? operands : operands.slice(-1);
      for (const target of targets) if (target !== undefined && RAW_DEVICE.test(target)) this.flag('raw_device_write');
    } else if (POWER_PROGRAMS.has(program)) this.flag('power_state');
    else if ((program === 'init' || program === 'telinit') && operands.some((a) => a === '0' || a === '6')) this.flag('power_state');
    else if (program === 'systemctl' && operands.some((a) => a !== undefined && ['poweroff', 'reboot', 'halt', 'kexec', 'emergency', 'rescue'].includes(a)))
      this.flag('power_state');
    else if (program === 'chmod' || program === 'chown' || program === 'chgrp') {
      // The first operand of chmod/chown is the mode or owner; the rest are paths.
      const paths = operands.slice(1);
      const worldWritable = program === 'chmod' && /^[0-7]?[0-7]{2}7$|a\+w|o\+w/.test(operands[0] ?? '');
      if ((recursive || worldWritable) && paths.some((p) => p === undefined || isSystemPath(p))) this.flag('recursive_permission_change');
    }
  }

  /** sh/bash: `-c script` is parsed again; a script file is a program; no script reads stdin. */
  private shell(invocation: Invocation): void {
    const at = commandStringIndex(invocation.args) ?? scriptFileIndex(invocation);
    if (at === undefined) return;
    const script = invocation.args[at];
    if (script === undefined) {
      const word = invocation.words[at];
      const inside = word ? programsInside(word) : [];
      if (inside.some((p) => DOWNLOADERS.has(p))) this.opaque('remote_code_execution', `${invocation.program} runs a script downloaded by ${inside.filter((p) => DOWNLOADERS.has(p)).join(', ')}`);
      else this.opaque('inline_code', `${invocation.program} runs a script chosen at run time`);
      return;
    }
    // A script file is a program of its own (like a function in SQL): listed, not opened.
    if (commandStringIndex(invocation.args) === undefined) return;
    this.script(script, `${invocation.program} -c`);
  }

  private script(text: string, where: string): void {
    if (this.depth >= MAX_DEPTH) {
      this.opaque('inline_code', `${where} nests scripts more than ${MAX_DEPTH} deep`);
      return;
    }
    const inner = analyse(text, this.depth + 1);
    this.programs.push(...(inner.programs ?? []));
    for (const flag of inner.flags) this.flags.add(flag);
    for (const target of inner.writes) this.writes.add(target);
    if (inner.opaque && !this.opaqueReason) this.opaqueReason = `${where}: ${inner.opaqueReason}`;
  }
}

const MAX_DEPTH = 8;

/** Index of the script argument of `sh -c script`, or undefined when there is no -c. */
function commandStringIndex(args: readonly (string | undefined)[]): number | undefined {
  for (const [i, arg] of args.entries()) {
    if (arg === undefined) return undefined;
    if (arg === '--' || !arg.startsWith('-')) return undefined;
    if (/^-[a-zA-Z]*c[a-zA-Z]*$/.test(arg)) return i + 1 < args.length ? i + 1 : undefined;
    if (arg === '-o' || arg === '-O' || arg === '+O') return undefined;
  }
  return undefined;
}

/** Index of the script file a shell runs (`bash deploy.sh`, `bash <(curl …)`, `. file`). */
function scriptFileIndex(invocation: Invocation): number | undefined {
  const at = invocation.args.findIndex((a) => a === undefined || !a.startsWith('-'));
  return at < 0 ? undefined : at;
}

/** A shell or interpreter with no script and no file argument reads its program from stdin. */
function readsScriptFromStdin(invocation: Invocation): boolean {
  const { program, args } = invocation;
  if (!SHELLS.has(program) && !(program in INTERPRETERS)) return false;
  if (SHELLS.has(program) && commandStringIndex(args) !== undefined) return false;
  const operands = args.filter((a) => a === undefined || a === '-' || !a.startsWith('-'));
  return operands.length === 0 || operands[0] === '-' || args.includes('-s');
}

function programsInside(word: ShWord): string[] {
  const out: string[] = [];
  walkTree(word, (node) => {
    if (node.type === 'CallExpr') {
      const program = staticWord((node.Args as ShWord[] | undefined)?.[0]);
      if (program !== undefined) out.push(basename(program));
    }
    return true;
  });
  return out;
}

function invocationOf(call: ShNode): Invocation | undefined {
  const words = (call.Args as readonly ShWord[] | null) ?? [];
  const first = staticWord(words[0]);
  if (first === undefined) return undefined;
  return { program: basename(first), args: words.slice(1).map(staticWord), words: words.slice(1) };
}

/** Options of each wrapper that take a value (so the value is not taken for the program). */
const WRAPPER_OPTIONS_WITH_VALUE: Readonly<Record<string, ReadonlySet<string>>> = {
  sudo: new Set(['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-U', '-T', '--user', '--group', '--chdir', '--host', '--prompt', '--role', '--type', '--other-user', '--command-timeout', '--close-from']),
  doas: new Set(['-u', '-C']),
  env: new Set(['-u', '-C', '--unset', '--chdir', '-S', '--split-string']),
  nice: new Set(['-n', '--adjustment']),
  ionice: new Set(['-c', '-n', '-p', '-P', '-u', '--class', '--classdata']),
  timeout: new Set(['-s', '-k', '--signal', '--kill-after']),
  stdbuf: new Set(['-i', '-o', '-e', '--input', '--output', '--error']),
  xargs: new Set(['-I', '-i', '-n', '-P', '-d', '-L', '-s', '-a', '-E', '-e', '--max-args', '--max-procs', '--delimiter', '--max-lines', '--arg-file', '--replace']),
  nohup: new Set(),
  exec: new Set(['-a']),
  command: new Set(),
  builtin: new Set(),
  time: new Set(['-f', '-o', '--format', '--output']),
  chroot: new Set(['--userspec', '--groups']),
  busybox: new Set(),
  watch: new Set(['-n', '-d', '--interval']),
  flock: new Set(['-w', '-E', '--timeout', '--conflict-exit-code']),
  setsid: new Set(),
  unbuffer: new Set(),
  strace: new Set(['-e', '-o', '-p', '-s', '-u']),
  su: new Set(['-s', '--shell', '-g', '--group', '-G']),
  runuser: new Set(['-u', '-g', '-G', '--user', '--group']),
  pkexec: new Set(['--user']),
  'ssh-agent': new Set(),
};

/**
 * The command a wrapper runs: `sudo -u x rm -rf /` runs rm. Undefined when the program is not a
 * wrapper (or runs nothing), null when what it runs is chosen at run time.
 */
function unwrapOnce(invocation: Invocation): Invocation | undefined | null {
  const withValue = WRAPPER_OPTIONS_WITH_VALUE[invocation.program];
  if (!withValue) return undefined;
  const { program, args, words } = invocation;
  if (program === 'su') {
    // su [options] [user] -c 'script': the script may come after the user.
    const at = args.findIndex((a) => a === '-c' || a === '--command');
    if (at < 0) return undefined;
    const script = args[at + 1];
    if (script === undefined) return at + 1 < args.length ? null : undefined;
    return { program: 'sh', args: ['-c', script], words: [] };
  }
  let i = 0;
  // env: NAME=value assignments come before the program; env -S 'cmd args' splits a string.
  while (i < args.length) {
    const arg = args[i];
    if (arg === undefined) return null;
    if (arg === '--') {
      i += 1;
      break;
    }
    if (program === 'env' && (arg === '-S' || arg === '--split-string')) {
      const split = args[i + 1];
      if (split === undefined) return null;
      const [inner, ...rest] = split.trim().split(/\s+/);
      return inner ? { program: basename(inner), args: [...rest, ...args.slice(i + 2)], words: [] } : undefined;
    }
    if (arg.startsWith('-') && arg !== '-') {
      const name = arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg;
      i += withValue.has(name) && !arg.includes('=') ? 2 : 1;
      continue;
    }
    if (program === 'env' && /^[A-Za-z_][A-Za-z0-9_]*=/.test(arg)) {
      i += 1;
      continue;
    }
    break;
  }
  // timeout DURATION cmd, chroot DIR cmd, nice's old -N form is an option already.
  if (program === 'timeout' || program === 'chroot' || program === 'flock') i += 1;
  if (i >= args.length) return undefined;
  const next = args[i];
  if (next === undefined) return null;
  return { program: basename(next), args: args.slice(i + 1), words: words.slice(i + 1) };
}

function unwrap(invocation: Invocation | undefined): Invocation | undefined {
  let current = invocation;
  for (let n = 0; current && n < 16; n++) {
    const inner = unwrapOnce(current);
    if (!inner) return current;
    current = inner;
  }
  return current;
}

function analyse(text: string, depth: number): StatementAnalysis {
  loadShellParser();
  let file: ShNode;
  try {
    file = plainTree(parser!.Parse(text, 'command').__internal_object__) as ShNode;
  } catch (error) {
    const message = typeof (error as { Error?: unknown }).Error === 'function' ? (error as { Error(): string }).Error() : String(error);
    return {
      kind: 'shell',
      opaque: true,
      opaqueReason: `the command could not be parsed (${message.replace(/^command:/, 'at ')})`,
      reads: [],
      writes: [],
      functions: [],
      hasWhere: undefined,
      flags: ['unparseable'],
      programs: [],
      textSensitive: true,
    };
  }
  const walker = new ShellWalker(depth);
  walker.walkFile(file);
  return {
    kind: 'shell',
    opaque: walker.opaqueReason !== '',
    opaqueReason: walker.opaqueReason,
    reads: [],
    writes: [...walker.writes].sort(),
    functions: [],
    hasWhere: undefined,
    flags: STATEMENT_FLAGS.filter((flag) => walker.flags.has(flag)),
    programs: [...new Set(walker.programs)],
    // A command line has no fingerprint: a cached decision is keyed on its exact text.
    textSensitive: true,
  };
}

/** Analyses one shell command line (the command of an SSH exec request). */
export function analyseShellCommand(text: string): StatementAnalysis {
  return analyse(text, 0);
}
