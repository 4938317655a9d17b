import { loadModule, parseSync, scanSync } from 'libpg-query';

/**
 * What one SQL statement does, as PostgreSQL's own parser (libpg_query) sees it. Policies match
 * on this, never on the text: a comment inside a keyword, a change of case, quoted identifiers
 * or a DELETE hidden in a CTE all parse to the same tree.
 */
export const STATEMENT_KINDS = [
  'select',
  'insert',
  'update',
  'delete',
  'merge',
  'truncate',
  'ddl',
  'dcl',
  'copy',
  'transaction',
  'set',
  'show',
  'explain',
  'session',
  'call',
  'do',
  'execute',
  'utility',
  'opaque',
  /** A shell command line (SSH), analysed by shell-analysis.ts. */
  'shell',
] as const;
export type StatementKind = (typeof STATEMENT_KINDS)[number];

export const STATEMENT_FLAGS = [
  /** pg_read_file, lo_import, dblink… : reaches the server's files, network or other backends. */
  'dangerous_function',
  /** COPY … TO/FROM PROGRAM: runs a shell command on the database server. */
  'copy_program',
  /** COPY … TO/FROM '/a/server/path'. */
  'copy_server_file',
  /** DO $$ … $$: procedural code the analyser cannot see into. */
  'do_block',
  /** EXECUTE of a prepared statement, query_to_xml('…'), dblink_exec: SQL chosen at run time. */
  'dynamic_sql',
  /** SET ROLE, SET SESSION AUTHORIZATION, RESET ALL, set_config('role', …). */
  'role_change',
  /** Any other SET / RESET / set_config / ALTER SYSTEM. */
  'setting_change',
  /** WITH d AS (DELETE …) SELECT …: the statement writes although it starts as a query. */
  'data_modifying_cte',
  /** LOAD 'library': loads a shared library into the backend. */
  'load_library',
  /** The parser could not read the text. */
  'unparseable',
  /** The text holds more than one statement; the gateway must split it and decide each. */
  'multiple_statements',
  // Shell command lines (shell-analysis.ts):
  /** rm -r of /, a top-level system directory, ~ or a path chosen at run time; find / -delete. */
  'destructive_delete',
  /** mkfs*, mkswap, wipefs, fdisk, parted…: rewrites a file system or partition table. */
  'filesystem_format',
  /** dd of=/dev/sd…, a redirect, tee or cp onto a disk device or /dev/mem. */
  'raw_device_write',
  /** shutdown, reboot, halt, poweroff, init 0/6, systemctl reboot… */
  'power_state',
  /** A function that calls itself: :(){ :|:& };: */
  'fork_bomb',
  /** chmod/chown/chgrp -R on /, a top-level system directory, or chmod 777 /. */
  'recursive_permission_change',
  /** A script downloaded and run: curl … | sh, bash <(curl …), sh -c "$(wget -O- …)". */
  'remote_code_execution',
  /** sudo, su, doas, pkexec. */
  'privilege_escalation',
  /** python -c, perl -e, a shell reading its script from stdin, eval of a value chosen at run time. */
  'inline_code',
  /** The program to run is chosen at run time ($CMD, $(…) as the command name). */
  'dynamic_command',
] as const;
export type StatementFlag = (typeof STATEMENT_FLAGS)[number];

export interface StatementAnalysis {
  readonly kind: StatementKind;
  /** True when the analyser cannot know what the statement will do (see {@link opaqueReason}). */
  readonly opaque: boolean;
  readonly opaqueReason: string;
  /** Tables and views read, as written in the statement (`schema.table` when qualified). */
  readonly reads: readonly string[];
  /** Tables written (DML targets, COPY FROM targets, objects created, altered or dropped). */
  readonly writes: readonly string[];
  /** Functions called, schema-qualified when written so. */
  readonly functions: readonly string[];
  /**
   * For statements containing UPDATE or DELETE (at any depth): false when any of them has no
   * WHERE clause, or one that reads no column (`WHERE true`, `WHERE 1=1`); undefined otherwise.
   */
  readonly hasWhere: boolean | undefined;
  readonly flags: readonly StatementFlag[];
  /** For a shell command: the programs it runs (basename), in the order they appear. */
  readonly programs?: readonly string[];
  /**
   * True when the analysis read a literal that libpg_query's fingerprint drops (set_config's
   * setting name): a cached decision must then be keyed on the exact text, not the fingerprint.
   */
  readonly textSensitive: boolean;
}

/** Loads the parser's WebAssembly module; call once before analysing. */
export async function loadSqlParser(): Promise<void> {
  await loadModule();
}

/** Functions that touch the server's file system, network or other sessions. */
const DANGEROUS_FUNCTIONS = new Set([
  'pg_read_file',
  'pg_read_binary_file',
  'pg_stat_file',
  'pg_ls_dir',
  'pg_ls_logdir',
  'pg_ls_waldir',
  'pg_ls_tmpdir',
  'pg_ls_archive_statusdir',
  'pg_ls_logicalsnapdir',
  'pg_ls_logicalmapdir',
  'pg_ls_replslotdir',
  'pg_file_write',
  'pg_file_rename',
  'pg_file_unlink',
  'pg_logdir_ls',
  'lo_import',
  'lo_export',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
]);

/** Functions that run SQL given to them as a string: what they do is decided at run time. */
const DYNAMIC_SQL_FUNCTIONS = new Set(['query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'dblink_exec', 'dblink']);

const ROLE_SETTINGS = new Set(['role', 'session_authorization']);

/** Session-local statements that change no data and no object. */
const SESSION_STATEMENTS = new Set(['FetchStmt', 'ClosePortalStmt', 'DeallocateStmt', 'DiscardStmt', 'ListenStmt', 'UnlistenStmt']);

const DCL_STATEMENTS = new Set([
  'GrantStmt',
  'GrantRoleStmt',
  'CreateRoleStmt',
  'AlterRoleStmt',
  'AlterRoleSetStmt',
  'DropRoleStmt',
  'AlterDefaultPrivilegesStmt',
  'ReassignOwnedStmt',
  'DropOwnedStmt',
  'AlterSystemStmt',
]);

const DDL_PREFIX = /^(Create|Alter|Drop|Rename|Comment|Define|CompositeType|Index|Rule|View|SecLabel|ImportForeignSchema|RefreshMatView)/;

/** DropStmt object types whose names are relations. */
const RELATION_OBJECT_TYPES = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_INDEX', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE']);

const WRITE_KINDS: ReadonlySet<StatementKind> = new Set(['insert', 'update', 'delete', 'merge']);

type AstObject = Record<string, unknown>;

function isObject(value: unknown): value is AstObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A node of the tree is `{ TypeName: { ...fields } }`; typed fields drop the wrapper. */
function nodeOf(value: unknown): [string, AstObject] | undefined {
  if (!isObject(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const type = keys[0]!;
  const body = value[type];
  return /^[A-Z]/.test(type) && isObject(body) ? [type, body] : undefined;
}

function stringsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((item) => {
    const node = nodeOf(item);
    return node?.[0] === 'String' && typeof node[1].sval === 'string' ? [node[1].sval] : [];
  });
}

function relationName(rangeVar: AstObject): string {
  return [rangeVar.catalogname, rangeVar.schemaname, rangeVar.relname].filter((part): part is string => typeof part === 'string').join('.');
}

/** Walks one statement's tree and collects what it touches. */
class StatementWalker {
  readonly reads = new Set<string>();
  readonly writes = new Set<string>();
  readonly functions = new Set<string>();
  readonly flags = new Set<StatementFlag>();
  readonly modifyingKinds: StatementKind[] = [];
  /** undefined until an UPDATE/DELETE is seen. */
  hasWhere: boolean | undefined;
  textSensitive = false;
  opaqueReason = '';
  /** CTE names visible at the current point, innermost last. */
  private readonly cteScopes: Set<string>[] = [];

  markOpaque(flag: StatementFlag, reason: string): void {
    this.flags.add(flag);
    if (!this.opaqueReason) this.opaqueReason = reason;
  }

  walk(value: unknown, mode: 'read' | 'write' = 'read'): void {
    if (Array.isArray(value)) {
      for (const item of value) this.walk(item, mode);
      return;
    }
    if (!isObject(value)) return;
    const node = nodeOf(value);
    if (node) {
      this.visit(node[0], node[1], mode);
      return;
    }
    // A typed field without its wrapper: a RangeVar or FuncCall, or a struct of more fields.
    if (typeof value.relname === 'string') {
      this.relation(value, mode);
      return;
    }
    this.walkFields(value, mode);
  }

  /** Walks the fields of a node, opening the scope of its WITH clause first. */
  private walkFields(body: AstObject, mode: 'read' | 'write', skip: readonly string[] = []): void {
    const withClause = body.withClause;
    const scoped = isObject(withClause);
    if (scoped) this.openWith(withClause);
    for (const [key, field] of Object.entries(body)) {
      if (key === 'withClause' || skip.includes(key)) continue;
      this.walk(field, mode);
    }
    if (scoped) this.cteScopes.pop();
  }

  private openWith(withClause: AstObject): void {
    const ctes = Array.isArray(withClause.ctes) ? withClause.ctes : [];
    const scope = new Set<string>();
    this.cteScopes.push(scope);
    const bodies: [string, unknown][] = [];
    for (const item of ctes) {
      const node = nodeOf(item);
      if (node?.[0] !== 'CommonTableExpr') continue;
      bodies.push([String(node[1].ctename ?? ''), node[1].ctequery]);
    }
    // A recursive WITH sees all its names in every body; a plain one only the CTEs before.
    if (withClause.recursive === true) for (const [name] of bodies) scope.add(name);
    for (const [name, query] of bodies) {
      const dml = nodeOf(query);
      if (dml && WRITE_KINDS.has(dmlKind(dml[0]) ?? 'select')) this.flags.add('data_modifying_cte');
      this.walk(query);
      scope.add(name);
    }
  }

  private isCte(rangeVar: AstObject): boolean {
    if (typeof rangeVar.schemaname === 'string' || typeof rangeVar.catalogname === 'string') return false;
    return this.cteScopes.some((scope) => scope.has(String(rangeVar.relname)));
  }

  private relation(rangeVar: AstObject, mode: 'read' | 'write'): void {
    if (mode === 'write') this.writes.add(relationName(rangeVar));
    else if (!this.isCte(rangeVar)) this.reads.add(relationName(rangeVar));
  }

  private noteWhere(whereClause: unknown): void {
    const real = whereClause !== undefined && containsColumnRef(whereClause);
    this.hasWhere = (this.hasWhere ?? true) && real;
  }

  private visit(type: string, body: AstObject, mode: 'read' | 'write'): void {
    switch (type) {
      case 'RangeVar':
        this.relation(body, mode);
        return;
      case 'FuncCall':
        this.functionCall(body);
        this.walkFields(body, 'read', ['funcname']);
        return;
      case 'InsertStmt':
      case 'MergeStmt':
        this.modifyingKinds.push(dmlKind(type)!);
        this.walkTarget(body);
        return;
      case 'UpdateStmt':
      case 'DeleteStmt':
        this.modifyingKinds.push(dmlKind(type)!);
        this.noteWhere(body.whereClause);
        this.walkTarget(body);
        return;
      case 'SelectStmt':
        if (isObject(body.intoClause) && isObject(body.intoClause.rel)) this.relation(body.intoClause.rel, 'write');
        this.walkFields(body, 'read', ['intoClause']);
        return;
      case 'DoStmt':
        this.markOpaque('do_block', 'a DO block runs procedural code the analyser cannot see into');
        return;
      case 'ExecuteStmt':
        this.markOpaque('dynamic_sql', `EXECUTE runs prepared statement '${String(body.name ?? '')}', whose text was decided earlier`);
        this.walkFields(body, 'read');
        return;
      case 'LoadStmt':
        this.flags.add('load_library');
        return;
      case 'CopyStmt':
        this.copy(body);
        return;
      case 'VariableSetStmt':
        this.setting(body);
        return;
      case 'AlterSystemStmt':
        this.flags.add('setting_change');
        return;
      case 'CallStmt':
        if (isObject(body.funccall)) this.visit('FuncCall', body.funccall, 'read');
        return;
      case 'DropStmt':
        if (RELATION_OBJECT_TYPES.has(String(body.removeType))) {
          for (const item of Array.isArray(body.objects) ? body.objects : []) {
            const list = nodeOf(item);
            if (list?.[0] === 'List') this.writes.add(stringsOf(list[1].items).join('.'));
          }
        }
        return;
      case 'TruncateStmt':
      case 'LockStmt':
        this.walk(body.relations, type === 'TruncateStmt' ? 'write' : 'read');
        return;
      case 'CreateTableAsStmt':
        if (isObject(body.into) && isObject(body.into.rel)) this.relation(body.into.rel, 'write');
        this.walk(body.query);
        return;
      case 'ExplainStmt':
        this.explain(body);
        return;
      default:
        if (DCL_STATEMENTS.has(type) || DDL_PREFIX.test(type)) {
          // The object a DDL/DCL statement names is written; a query inside it (a view's) is read.
          for (const [key, field] of Object.entries(body)) {
            if (key === 'query') this.walk(field, 'read');
            else if (key === 'relation' || key === 'view' || key === 'objects' || key === 'relations') this.walk(field, 'write');
            else this.walk(field, 'read');
          }
          return;
        }
        this.walkFields(body, mode);
    }
  }

  private walkTarget(body: AstObject): void {
    const withClause = body.withClause;
    const scoped = isObject(withClause);
    if (scoped) this.openWith(withClause);
    if (isObject(body.relation)) this.relation(body.relation, 'write');
    for (const [key, field] of Object.entries(body)) {
      if (key === 'withClause' || key === 'relation') continue;
      this.walk(field, 'read');
    }
    if (scoped) this.cteScopes.pop();
  }

  private functionCall(body: AstObject): void {
    const parts = stringsOf(body.funcname);
    const name = parts.join('.');
    const base = parts[parts.length - 1] ?? '';
    this.functions.add(name);
    if (DANGEROUS_FUNCTIONS.has(base) || base.startsWith('dblink')) this.flags.add('dangerous_function');
    if (DYNAMIC_SQL_FUNCTIONS.has(base)) this.markOpaque('dynamic_sql', `${name}() runs SQL given to it as a string`);
    if (base === 'set_config') {
      this.flags.add('setting_change');
      this.textSensitive = true;
      const args = Array.isArray(body.args) ? body.args : [];
      const setting = constantString(args[0]);
      // A setting chosen at run time may be the role: treat it as one.
      if (setting === undefined || ROLE_SETTINGS.has(setting.toLowerCase())) this.flags.add('role_change');
    }
  }

  private copy(body: AstObject): void {
    if (body.is_program === true) this.flags.add('copy_program');
    else if (typeof body.filename === 'string') this.flags.add('copy_server_file');
    if (isObject(body.relation)) this.relation(body.relation, body.is_from === true ? 'write' : 'read');
    this.walk(body.query);
    this.walk(body.whereClause);
  }

  private setting(body: AstObject): void {
    const name = typeof body.name === 'string' ? body.name.toLowerCase() : '';
    if (ROLE_SETTINGS.has(name) || body.kind === 'VAR_RESET_ALL') this.flags.add('role_change');
    this.flags.add('setting_change');
    this.walk(body.args);
  }

  private explain(body: AstObject): void {
    if (explainRuns(body)) {
      // EXPLAIN ANALYZE runs the statement: it is decided as that statement.
      this.walk(body.query);
      return;
    }
    const inner = new StatementWalker();
    inner.cteScopes.push(...this.cteScopes);
    inner.walk(body.query);
    for (const table of [...inner.reads, ...inner.writes]) this.reads.add(table);
    for (const flag of inner.flags) this.flags.add(flag);
    this.textSensitive ||= inner.textSensitive;
  }
}

function dmlKind(type: string): StatementKind | undefined {
  switch (type) {
    case 'InsertStmt':
      return 'insert';
    case 'UpdateStmt':
      return 'update';
    case 'DeleteStmt':
      return 'delete';
    case 'MergeStmt':
      return 'merge';
    default:
      return undefined;
  }
}

/** EXPLAIN ANALYZE executes the statement; plain EXPLAIN only plans it. */
function explainRuns(body: AstObject): boolean {
  const options = Array.isArray(body.options) ? body.options : [];
  return options.some((option) => {
    const node = nodeOf(option);
    return node?.[0] === 'DefElem' && node[1].defname === 'analyze' && !isFalse(node[1].arg);
  });
}

function constantString(value: unknown): string | undefined {
  const node = nodeOf(value);
  if (node?.[0] === 'A_Const' && isObject(node[1].sval) && typeof node[1].sval.sval === 'string') return node[1].sval.sval;
  if (node?.[0] === 'TypeCast') return constantString(node[1].arg);
  return undefined;
}

function isFalse(arg: unknown): boolean {
  const node = nodeOf(arg);
  if (!node) return false;
  if (node[0] === 'Boolean') return node[1].boolval !== true;
  if (node[0] === 'String') return ['false', 'off', '0', 'no'].includes(String(node[1].sval).toLowerCase());
  if (node[0] === 'Integer') return (node[1].ival ?? 0) === 0;
  return false;
}

function containsColumnRef(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(containsColumnRef);
  if (!isObject(value)) return false;
  if ('ColumnRef' in value || 'CurrentOfExpr' in value) return true;
  return Object.values(value).some(containsColumnRef);
}

function topKind(type: string, body: AstObject): StatementKind {
  const dml = dmlKind(type);
  if (dml) return dml;
  switch (type) {
    case 'SelectStmt':
      return isObject(body.intoClause) ? 'ddl' : 'select';
    case 'TruncateStmt':
      return 'truncate';
    case 'CopyStmt':
      return 'copy';
    case 'TransactionStmt':
      return 'transaction';
    case 'VariableSetStmt':
      return 'set';
    case 'VariableShowStmt':
      return 'show';
    case 'CallStmt':
      return 'call';
    case 'DoStmt':
      return 'do';
    case 'ExecuteStmt':
      return 'execute';
    case 'CreateTableAsStmt':
      return 'ddl';
    case 'ExplainStmt':
    case 'PrepareStmt':
    case 'DeclareCursorStmt': {
      // Judged by the statement inside (EXPLAIN without ANALYZE is only a plan).
      const inner = nodeOf(body.query);
      if (type === 'ExplainStmt' && !explainRuns(body)) return 'explain';
      return inner ? topKind(inner[0], inner[1]) : 'utility';
    }
    default:
      if (SESSION_STATEMENTS.has(type)) return 'session';
      if (DCL_STATEMENTS.has(type)) return 'dcl';
      if (DDL_PREFIX.test(type)) return 'ddl';
      return 'utility';
  }
}

function unreadable(reason: string, flag: StatementFlag = 'unparseable'): StatementAnalysis {
  return { kind: 'opaque', opaque: true, opaqueReason: reason, reads: [], writes: [], functions: [], hasWhere: undefined, flags: [flag], textSensitive: false };
}

/**
 * Analyses one statement. Text the parser cannot read, and text holding several statements, is
 * opaque: the caller splits a multi-statement query with {@link splitStatements} first.
 */
export function analyseStatement(sql: string): StatementAnalysis {
  let parsed: ReturnType<typeof parseSync>;
  try {
    parsed = parseSync(sql);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return unreadable(`the statement could not be parsed (${message})`);
  }
  const statements = parsed.stmts ?? [];
  if (statements.length > 1) {
    return { ...unreadable(`the text holds ${statements.length} statements; each must be decided on its own`, 'multiple_statements') };
  }
  const root = nodeOf(statements[0]?.stmt);
  if (!root) return unreadable('the text holds no statement');

  const walker = new StatementWalker();
  walker.walk(statements[0]!.stmt);
  let kind = topKind(root[0], root[1]);
  // A query or COPY that modifies data through a CTE is judged as the modification it makes.
  const firstModifying = walker.modifyingKinds[0];
  if (firstModifying && (kind === 'select' || kind === 'explain')) kind = firstModifying;
  const flags = STATEMENT_FLAGS.filter((flag) => walker.flags.has(flag));
  return {
    kind,
    opaque: walker.opaqueReason !== '',
    opaqueReason: walker.opaqueReason,
    reads: [...walker.reads].sort(),
    writes: [...walker.writes].sort(),
    functions: [...walker.functions].sort(),
    hasWhere: walker.hasWhere,
    flags,
    textSensitive: walker.textSensitive,
  };
}

/**
 * Splits a simple-protocol query into its statements, as PostgreSQL would: semicolons inside
 * strings, dollar quotes, quoted identifiers and comments do not split. Offsets from the parser
 * are in bytes of UTF-8. If the whole text does not parse, the lexer still splits it, so each
 * piece is decided on its own (an unreadable piece is then opaque); if even the lexer fails,
 * the text is returned whole.
 */
export function splitStatements(query: string): string[] {
  const bytes = Buffer.from(query, 'utf8');
  const slice = (start: number, end: number) => bytes.subarray(start, end).toString('utf8').trim();
  try {
    const parsed = parseSync(query);
    return (parsed.stmts ?? [])
      .map((raw) => {
        const start = raw.stmt_location ?? 0;
        const end = raw.stmt_len ? start + raw.stmt_len : bytes.length;
        return slice(start, end);
      })
      .filter((text) => text !== '' && text !== ';');
  } catch {
    // fall through to the lexer
  }
  try {
    const pieces: string[] = [];
    let start = 0;
    for (const token of scanSync(query).tokens) {
      if (token.tokenName !== 'ASCII_59') continue;
      pieces.push(slice(start, token.start));
      start = token.end;
    }
    pieces.push(slice(start, bytes.length));
    return pieces.filter((text) => text !== '');
  } catch {
    return query.trim() === '' ? [] : [query.trim()];
  }
}
