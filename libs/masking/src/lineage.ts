import { loadModule, parseSync } from 'libpg-query';

/**
 * Column lineage: which source columns each output column of a statement derives from, read
 * from PostgreSQL's own parse tree (libpg_query). A column rule must follow its column through
 * aliases, casts, functions, CTEs, subqueries and set operations: `SELECT reverse(ssn) AS x`
 * derives from ssn and is masked as a whole.
 *
 * The analysis has no catalog: an unqualified column in a query over several tables is counted
 * as coming from each of them, and a whole-row reference (`to_jsonb(u)`, `u::text`) as coming
 * from every column of its table (`column: '*'`). Both over-approximate, never under.
 *
 * Views are followed when the caller passes their definitions (ViewDefinitions; the engine does
 * no I/O): a view's column then derives from what its defining query reads, views on views
 * included, so `CREATE VIEW contacts AS SELECT email AS contact FROM users` cannot launder
 * users.email. A view's columns also keep the view's own name as a source, so a rule naming the
 * view's column still applies. A view whose definition cannot be followed (it does not parse,
 * views nest deeper than MAX_VIEW_DEPTH, or its shape is opaque) makes its columns derive from
 * an unknown column (`column: '*'`, no table), which every column rule matches: masked whole.
 */
export interface SourceColumn {
  /** The table (or view) as written, without schema; undefined when the statement does not say. */
  readonly table?: string;
  /** The column name, or '*' for a whole-row reference. */
  readonly column: string;
}

export interface OutputColumnLineage {
  /** The output column's name as PostgreSQL will report it, when the analysis knows it. */
  readonly name: string | undefined;
  readonly sources: readonly SourceColumn[];
  /**
   * False for a plain reference (the value is the source value, however renamed); true for
   * anything computed from it (a cast, a function, an operator, an aggregate).
   */
  readonly derived: boolean;
  /**
   * Set for `*` / `t.*` over a table whose columns only the catalog knows: this one entry stands
   * for all of that table's columns (RowDescription tells how many and their names).
   */
  readonly star?: { readonly table: string | undefined };
}

/**
 * The defining queries of the target's views and materialized views, by the name a statement
 * uses. Names are as PostgreSQL stores them (unquoted names folded to lower case by the parser).
 */
export interface ViewDefinitions {
  /**
   * The definitions a relation name may denote: for `schema.name` the one view there, if any; for
   * a bare name one per schema that has a view of that name (the search path picks one at run
   * time, so each counts). Empty when no view has that name. A definition is the view's query
   * (`pg_get_viewdef`) or the statement that created it (`CREATE [MATERIALIZED] VIEW … AS …`).
   */
  definitions(name: string, schema: string | undefined): readonly string[];
}

/** How deep views on views are followed; a deeper chain (or a cycle of stale definitions) is unknown. */
export const MAX_VIEW_DEPTH = 16;

/** Loads libpg_query's WebAssembly; call once before analyzeOutputLineage (the gateway does at start-up). */
export async function loadSqlParser(): Promise<void> {
  await loadModule();
}

type Node = Record<string, unknown>;

type Relation =
  | { readonly alias: string; readonly kind: 'table'; readonly table: string }
  | { readonly alias: string; readonly kind: 'derived'; readonly columns: readonly OutputColumnLineage[] }
  | { readonly alias: string; readonly kind: 'function'; readonly sources: readonly SourceColumn[]; readonly columnNames: readonly string[] }
  | { readonly alias: string; readonly kind: 'view'; readonly table: string; readonly shape: ViewShape };

/** What a view's columns derive from: each column's lineage, or, when that cannot be told, what the whole view may read. */
type ViewShape = { readonly kind: 'columns'; readonly columns: readonly OutputColumnLineage[] } | { readonly kind: 'unknown'; readonly sources: readonly SourceColumn[] };

/** A column no analysis could name: every column rule matches it. */
const UNKNOWN_SOURCE: SourceColumn = { column: '*' };

/** The views an analysis follows, how deep it is among them, and the shapes already worked out. */
interface ViewContext {
  readonly definitions: ViewDefinitions;
  readonly depth: number;
  readonly memo: Map<string, ViewShape>;
  /** The definitions being analysed on the way here: meeting one again is a cycle. */
  readonly inProgress: Set<string>;
}

interface Scope {
  readonly relations: readonly Relation[];
  readonly parent: Scope | undefined;
  readonly ctes: ReadonlyMap<string, readonly OutputColumnLineage[]>;
  readonly views: ViewContext | undefined;
}

/** View shapes by definition text, per ViewDefinitions object: a snapshot of a catalog analyses each view once. */
const viewMemos = new WeakMap<ViewDefinitions, Map<string, ViewShape>>();

function viewContext(definitions: ViewDefinitions | undefined): ViewContext | undefined {
  if (!definitions) return undefined;
  let memo = viewMemos.get(definitions);
  if (!memo) {
    memo = new Map();
    viewMemos.set(definitions, memo);
  }
  return { definitions, depth: 0, memo, inProgress: new Set() };
}

/** Thrown inside the analysis for a shape it cannot follow; the caller sees undefined. */
class Unknowable extends Error {}

/**
 * What the analysis could say about a statement's result:
 * - `columns`: the lineage of each output column;
 * - `no-rows`: the statement returns no rows of its own (DDL, SET, EXPLAIN, EXECUTE, FETCH…) or
 *   does not parse (the target will refuse it too);
 * - `opaque`: a query whose shape the analysis cannot follow (TABLESAMPLE, JSON_TABLE, several
 *   statements…); `reads` lists every column it mentions anywhere, so a caller can refuse it when
 *   one of them is masked rather than guess.
 */
export type LineageAnalysis =
  | { readonly kind: 'columns'; readonly columns: readonly OutputColumnLineage[] }
  | { readonly kind: 'no-rows' }
  | { readonly kind: 'opaque'; readonly reads: readonly SourceColumn[] };

export function analyzeStatementLineage(sql: string, views?: ViewDefinitions): LineageAnalysis {
  const statements = parseStatements(sql);
  if (!statements) return { kind: 'no-rows' };
  if (!statements.some(returnsRows)) return { kind: 'no-rows' };
  const context = viewContext(views);
  if (statements.length !== 1) return { kind: 'opaque', reads: opaqueReads(statements, context) };
  return lineageOfStatement(statements[0]!, context);
}

/**
 * For `DECLARE c CURSOR FOR <query>` and `PREPARE p AS <query>`: the name and the lineage of the
 * query, which a later `FETCH … FROM c` or `EXECUTE p` returns. Their results carry no statement
 * text of their own, so the caller keeps this by name and passes it to planResult then: an alias
 * inside a cursor or a prepared statement must not escape a column rule.
 */
export function namedQueryLineage(sql: string, views?: ViewDefinitions): { readonly kind: 'cursor' | 'prepared'; readonly name: string; readonly lineage: LineageAnalysis } | undefined {
  const statements = parseStatements(sql);
  if (!statements || statements.length !== 1) return undefined;
  const stmt = statements[0]!;
  const cursor = stmt['DeclareCursorStmt'] as Node | undefined;
  const prepared = stmt['PrepareStmt'] as Node | undefined;
  const named = cursor ?? prepared;
  if (!named) return undefined;
  const query = named['query'] as Node | undefined;
  const lineage: LineageAnalysis = query && returnsRows(query) ? lineageOfStatement(query, viewContext(views)) : { kind: 'no-rows' };
  return { kind: cursor ? 'cursor' : 'prepared', name: String(cursor ? cursor['portalname'] : prepared!['name']), lineage };
}

function parseStatements(sql: string): Node[] | undefined {
  let stmts: unknown[];
  try {
    stmts = (parseSync(sql) as { stmts?: unknown[] }).stmts ?? [];
  } catch (error) {
    // Not loaded is a programming error, not an unreadable statement: masking must not silently lose lineage.
    if (error instanceof Error && /loadModule/.test(error.message)) {
      throw new Error('the SQL parser is not loaded; await loadSqlParser() once before masking results', { cause: error });
    }
    return undefined;
  }
  return stmts.map((s) => (s as { stmt?: Node }).stmt).filter((s): s is Node => s !== undefined);
}

function returnsRows(stmt: Node): boolean {
  return Boolean(stmt['SelectStmt']) || ['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'].some((kind) => hasReturning(stmt[kind] as Node | undefined));
}

function lineageOfStatement(stmt: Node, views: ViewContext | undefined): LineageAnalysis {
  const root: Scope = { relations: [], parent: undefined, ctes: new Map(), views };
  try {
    if (stmt['SelectStmt']) return { kind: 'columns', columns: [...analyzeSelect(stmt['SelectStmt'] as Node, root)] };
    for (const kind of ['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']) {
      const dml = stmt[kind] as Node | undefined;
      const columns = dml ? analyzeReturning(dml, root) : undefined;
      if (columns) return { kind: 'columns', columns };
    }
  } catch {
    // An unforeseen tree shape (Unknowable, or one the walk did not expect): never a crash on the
    // hot path, and never a guess: the caller refuses if a masked column is mentioned.
  }
  return { kind: 'opaque', reads: opaqueReads([stmt], views) };
}

/**
 * The lineage of each output column of a SELECT (or of the RETURNING list of INSERT, UPDATE,
 * DELETE, MERGE); undefined when the statement returns no rows or its shape cannot be followed
 * (see analyzeStatementLineage for which).
 */
export function analyzeOutputLineage(sql: string, views?: ViewDefinitions): OutputColumnLineage[] | undefined {
  const analysis = analyzeStatementLineage(sql, views);
  return analysis.kind === 'columns' ? [...analysis.columns] : undefined;
}

function hasReturning(dml: Node | undefined): boolean {
  if (!dml) return false;
  const returning = ((dml['returningClause'] as Node | undefined)?.['exprs'] ?? dml['returningList']) as unknown[] | undefined;
  return (returning?.length ?? 0) > 0;
}

/** Every column reference anywhere in the statements, qualifiers dropped (they may be aliases). */
function mentionedColumns(statements: readonly Node[]): SourceColumn[] {
  const found = new Map<string, SourceColumn>();
  const relations = new Set<string>();
  const bare = new Set<string>();
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    const ref = (node as Node)['ColumnRef'] as Node | undefined;
    if (ref) {
      const fields = (ref['fields'] as Node[]).map((f) => (f['A_Star'] ? '*' : (stringOf(f) ?? '')));
      const column = fields[fields.length - 1]!;
      found.set(column, { column });
      if (fields.length === 1) bare.add(column.toLowerCase());
      return;
    }
    const alias = ((node as Node)['alias'] as Node | undefined)?.['aliasname'];
    if (typeof alias === 'string') relations.add(alias.toLowerCase());
    const relname = (node as Node)['relname'];
    if (typeof relname === 'string') relations.add(relname.toLowerCase());
    Object.values(node).forEach(walk);
  };
  statements.forEach(walk);
  // A bare relation name is its whole row.
  if ([...bare].some((name) => relations.has(name))) found.set('*', { column: '*' });
  return [...found.values()];
}

function analyzeReturning(dml: Node, outer: Scope): OutputColumnLineage[] | undefined {
  const returning = ((dml['returningClause'] as Node | undefined)?.['exprs'] ?? dml['returningList']) as Node[] | undefined;
  if (!returning || returning.length === 0) return undefined;
  const scope = withCtes(dml['withClause'] as Node | undefined, outer);
  const relations: Relation[] = [];
  const target = dml['relation'] as Node | undefined;
  if (target) relations.push(...fromItem({ RangeVar: target }, scope));
  for (const item of [...((dml['fromClause'] as Node[]) ?? []), ...((dml['usingClause'] as Node[]) ?? [])]) relations.push(...fromItem(item, scope));
  if (dml['sourceRelation']) relations.push(...fromItem(dml['sourceRelation'] as Node, scope));
  return targetList(returning, { relations, parent: outer, ctes: scope.ctes, views: outer.views });
}

function withCtes(withClause: Node | undefined, outer: Scope): Scope {
  if (!withClause) return outer;
  const ctes = new Map(outer.ctes);
  for (const item of (withClause['ctes'] as Node[]) ?? []) {
    const cte = item['CommonTableExpr'] as Node;
    const name = String(cte['ctename']).toLowerCase();
    const query = cte['ctequery'] as Node;
    const analyze = (): readonly OutputColumnLineage[] => {
      const inner = query['SelectStmt'] ? analyzeSelect(query['SelectStmt'] as Node, { ...outer, ctes }) : dmlOutput(query, { ...outer, ctes });
      return renamed(inner, cte['aliascolnames'] as Node[] | undefined);
    };
    // A recursive CTE reads itself: first as nothing, then as what that first reading produced.
    ctes.set(name, []);
    ctes.set(name, analyze());
    if (withClause['recursive']) ctes.set(name, analyze());
  }
  return { ...outer, ctes };
}

function dmlOutput(query: Node, scope: Scope): readonly OutputColumnLineage[] {
  for (const kind of ['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']) {
    const dml = query[kind] as Node | undefined;
    if (dml) return analyzeReturning(dml, scope) ?? [];
  }
  throw new Unknowable();
}

function renamed(columns: readonly OutputColumnLineage[], names: Node[] | undefined): readonly OutputColumnLineage[] {
  if (!names || names.length === 0) return columns;
  if (columns.some((c) => c.star)) return columns;
  return columns.map((c, i) => {
    const name = stringOf(names[i]);
    return name === undefined ? c : { ...c, name };
  });
}

function analyzeSelect(select: Node, outer: Scope): readonly OutputColumnLineage[] {
  const scope = withCtes(select['withClause'] as Node | undefined, outer);
  const op = select['op'] as string | undefined;
  if (op && op !== 'SETOP_NONE') {
    const left = analyzeSelect(select['larg'] as Node, scope);
    const right = analyzeSelect(select['rarg'] as Node, scope);
    return combineSetOperation(left, right);
  }
  const values = select['valuesLists'] as Node[] | undefined;
  if (values && values.length > 0) {
    const rows = values.map((row) => ((row['List'] as Node)['items'] as Node[]) ?? []);
    const width = rows[0]?.length ?? 0;
    const current: Scope = { relations: [], parent: scope, ctes: scope.ctes, views: scope.views };
    return Array.from({ length: width }, (_, i) => ({
      name: `column${i + 1}`,
      sources: dedupe(rows.flatMap((row) => (row[i] ? collect(row[i], current) : []))),
      derived: true,
    }));
  }
  const relations: Relation[] = [];
  const current: Scope = { relations, parent: outer, ctes: scope.ctes, views: outer.views };
  // LATERAL items see the ones before them: resolve in order into the same scope.
  for (const item of (select['fromClause'] as Node[]) ?? []) relations.push(...fromItem(item, current));
  return targetList((select['targetList'] as Node[]) ?? [], current);
}

function combineSetOperation(left: readonly OutputColumnLineage[], right: readonly OutputColumnLineage[]): readonly OutputColumnLineage[] {
  if (left.length !== right.length) throw new Unknowable();
  return left.map((l, i) => {
    const r = right[i]!;
    if (Boolean(l.star) !== Boolean(r.star)) throw new Unknowable();
    const sources = dedupe([...l.sources, ...r.sources, ...(r.star ? [{ ...(r.star.table ? { table: r.star.table } : {}), column: '*' }] : [])]);
    return { name: l.name, sources, derived: l.derived || r.derived, ...(l.star ? { star: l.star } : {}) };
  });
}

function fromItem(item: Node, scope: Scope): Relation[] {
  if (item['RangeVar']) {
    const rv = item['RangeVar'] as Node;
    const name = String(rv['relname']);
    const alias = aliasOf(rv) ?? name;
    const cte = rv['schemaname'] ? undefined : lookupCte(scope, name.toLowerCase());
    if (cte) return [{ alias, kind: 'derived', columns: renamed(cte, aliasColumns(rv)) }];
    const view = scope.views ? viewShape(name, rv['schemaname'] as string | undefined, scope.views) : undefined;
    if (view) return [{ alias, kind: 'view', table: name, shape: renamedShape(view, aliasColumns(rv)) }];
    return [{ alias, kind: 'table', table: name }];
  }
  if (item['RangeSubselect']) {
    const rs = item['RangeSubselect'] as Node;
    const subquery = rs['subquery'] as Node;
    const columns = subquery['SelectStmt'] ? analyzeSelect(subquery['SelectStmt'] as Node, scope) : dmlOutput(subquery, scope);
    return [{ alias: aliasOf(rs) ?? '', kind: 'derived', columns: renamed(columns, aliasColumns(rs)) }];
  }
  if (item['JoinExpr']) {
    const join = item['JoinExpr'] as Node;
    return [...fromItem(join['larg'] as Node, scope), ...fromItem(join['rarg'] as Node, scope)];
  }
  if (item['RangeFunction']) {
    const rf = item['RangeFunction'] as Node;
    const sources = dedupe(collect(rf['functions'], scope));
    const columnNames = (aliasColumns(rf) ?? []).map((n) => stringOf(n) ?? '');
    return [{ alias: aliasOf(rf) ?? functionName(rf) ?? '', kind: 'function', sources, columnNames }];
  }
  // Table samples, XMLTABLE, JSON_TABLE…: read through their arguments, shape unknown.
  throw new Unknowable();
}

function lookupCte(scope: Scope | undefined, name: string): readonly OutputColumnLineage[] | undefined {
  for (let s = scope; s; s = s.parent) {
    const cte = s.ctes.get(name);
    if (cte) return cte;
  }
  return undefined;
}

function targetList(targets: readonly Node[], scope: Scope): OutputColumnLineage[] {
  const out: OutputColumnLineage[] = [];
  for (const target of targets) {
    const res = target['ResTarget'] as Node;
    const val = res['val'] as Node;
    const ref = val['ColumnRef'] as Node | undefined;
    if (ref) {
      const fields = ref['fields'] as Node[];
      if (fields[fields.length - 1]?.['A_Star']) {
        out.push(...expandStar(fields.length > 1 ? stringOf(fields[fields.length - 2]) : undefined, scope));
        continue;
      }
    }
    const name = (res['name'] as string | undefined) ?? columnName(val);
    if (ref) {
      const resolved = resolveColumnRef(ref, scope);
      out.push({ name, sources: dedupe(resolved.sources), derived: resolved.derived });
    } else {
      out.push({ name, sources: dedupe(collect(val, scope)), derived: true });
    }
  }
  return out;
}

function expandStar(qualifier: string | undefined, scope: Scope): OutputColumnLineage[] {
  const relations = qualifier === undefined ? scope.relations : scope.relations.filter((r) => sameName(r.alias, qualifier));
  if (qualifier !== undefined && relations.length === 0) return [{ name: undefined, sources: [], derived: false, star: { table: qualifier } }];
  return relations.flatMap((r): OutputColumnLineage[] => {
    switch (r.kind) {
      case 'table':
        return [{ name: undefined, sources: [], derived: false, star: { table: r.table } }];
      case 'derived':
        return [...r.columns];
      case 'function':
        return [{ name: undefined, sources: r.sources, derived: true, star: { table: undefined } }];
      case 'view':
        if (r.shape.kind === 'unknown') return [{ name: undefined, sources: r.shape.sources, derived: true, star: { table: r.table } }];
        return r.shape.columns.map((c) => (c.star || c.name === undefined ? c : { ...c, sources: [{ table: r.table, column: c.name }, ...c.sources] }));
    }
  });
}

interface Resolved {
  readonly sources: SourceColumn[];
  readonly derived: boolean;
}

function resolveColumnRef(ref: Node, scope: Scope): Resolved {
  const fields = (ref['fields'] as Node[]).map((f) => (f['A_Star'] ? '*' : (stringOf(f) ?? '')));
  const column = fields[fields.length - 1]!;
  const qualifier = fields.length > 1 ? fields[fields.length - 2] : undefined;
  for (let s: Scope | undefined = scope; s; s = s.parent) {
    if (qualifier !== undefined) {
      const relation = s.relations.find((r) => sameName(r.alias, qualifier));
      if (relation) return fromRelation(relation, column);
      continue;
    }
    const found: Resolved[] = [];
    for (const relation of s.relations) {
      if (relation.kind === 'derived') {
        const hit = relation.columns.find((c) => c.name !== undefined && sameName(c.name, column));
        if (hit) found.push({ sources: [...hit.sources], derived: hit.derived });
        else if (relation.columns.length === 0 || relation.columns.some((c) => c.star)) found.push(fromRelation(relation, column));
      } else if (relation.kind === 'view' && relation.shape.kind === 'columns') {
        // A view without the column does not supply it (PostgreSQL takes it from another relation).
        if (relation.shape.columns.some((c) => c.star || (c.name !== undefined && sameName(c.name, column)))) found.push(fromRelation(relation, column));
      } else {
        found.push(fromRelation(relation, column));
      }
      // A bare relation name in an expression is its whole row: `SELECT u FROM users u`, `to_jsonb(u)`.
      if (sameName(relation.alias, column)) found.push({ ...fromRelation(relation, '*'), derived: true });
    }
    if (found.length > 0) {
      return { sources: found.flatMap((f) => f.sources), derived: found.length > 1 ? found.some((f) => f.derived) || found.some((f) => f.sources.some((x) => x.column === '*')) : found[0]!.derived };
    }
  }
  return { sources: [{ ...(qualifier !== undefined ? { table: qualifier } : {}), column }], derived: column === '*' };
}

function fromRelation(relation: Relation, column: string): Resolved {
  switch (relation.kind) {
    case 'table':
      return { sources: [{ table: relation.table, column }], derived: column === '*' };
    case 'function':
      return { sources: [...relation.sources], derived: true };
    case 'derived': {
      if (column === '*') {
        const sources = relation.columns.flatMap((c) => [...c.sources, ...(c.star ? [{ ...(c.star.table ? { table: c.star.table } : {}), column: '*' }] : [])]);
        return { sources, derived: true };
      }
      const hit = relation.columns.find((c) => c.name !== undefined && sameName(c.name, column));
      if (hit) return { sources: [...hit.sources], derived: hit.derived };
      const stars = relation.columns.filter((c) => c.star);
      if (stars.length > 0) return { sources: stars.flatMap((c) => [{ ...(c.star!.table ? { table: c.star!.table } : {}), column }, ...c.sources]), derived: stars.some((c) => c.derived) };
      // No columns: a recursive CTE read during its own first reading; its real columns come in the second.
      if (relation.columns.length === 0) return { sources: [], derived: false };
      return { sources: [{ column }], derived: false };
    }
    case 'view': {
      const own: SourceColumn = { table: relation.table, column };
      const shape = relation.shape;
      if (column === '*' || shape.kind === 'unknown') return { sources: [own, ...everySource(shape)], derived: true };
      const hit = shape.columns.find((c) => c.name !== undefined && sameName(c.name, column));
      if (hit) return { sources: [own, ...hit.sources], derived: hit.derived };
      const stars = shape.columns.filter((c) => c.star);
      if (stars.length > 0) return { sources: [own, ...stars.flatMap((c) => [{ ...(c.star!.table ? { table: c.star!.table } : {}), column }, ...c.sources])], derived: stars.some((c) => c.derived) };
      // A column the definition does not have: the definition is older than the view (the catalog
      // was read before an ALTER); it may be any of the view's columns.
      return { sources: [own, ...everySource(shape)], derived: true };
    }
  }
}

/**
 * The shape of the view a relation name denotes, or undefined when it is no view. Several
 * definitions (one name in several schemas) merge column by column when their columns agree,
 * else into what any of them may read.
 */
function viewShape(name: string, schema: string | undefined, views: ViewContext): ViewShape | undefined {
  const definitions = views.definitions.definitions(name, schema);
  if (definitions.length === 0) return undefined;
  const shapes = definitions.map((definition) => shapeOfDefinition(definition, views));
  if (shapes.length === 1) return shapes[0];
  const first = shapes[0]!;
  const agree =
    first.kind === 'columns' &&
    shapes.every((s) => s.kind === 'columns' && s.columns.length === first.columns.length && s.columns.every((c, i) => c.name === first.columns[i]!.name && Boolean(c.star) === Boolean(first.columns[i]!.star)));
  if (!agree) return { kind: 'unknown', sources: dedupe(shapes.flatMap(everySource)) };
  return {
    kind: 'columns',
    columns: first.columns.map((c, i) => {
      const merged = shapes.map((s) => (s as Extract<ViewShape, { kind: 'columns' }>).columns[i]!);
      return { ...c, sources: dedupe(merged.flatMap((m) => m.sources)), derived: merged.some((m) => m.derived) };
    }),
  };
}

/**
 * Each definition is analysed once per set of views, whatever reaches it (memoised even when a
 * limit cut it short: unknown is safe), so definitions that name each other — never so in a real
 * catalog, but a client can send such CREATE VIEWs — cost one analysis each, not one per path.
 */
function shapeOfDefinition(definition: string, views: ViewContext): ViewShape {
  const memoised = views.memo.get(definition);
  if (memoised) return memoised;
  if (views.depth >= MAX_VIEW_DEPTH || views.inProgress.has(definition)) return { kind: 'unknown', sources: [UNKNOWN_SOURCE] };
  views.inProgress.add(definition);
  const shape = analyzeDefinition(definition, { ...views, depth: views.depth + 1 });
  views.inProgress.delete(definition);
  views.memo.set(definition, shape);
  return shape;
}

/** A view's definition: its query (`pg_get_viewdef`), or the CREATE [MATERIALIZED] VIEW statement that made it. */
function analyzeDefinition(definition: string, views: ViewContext): ViewShape {
  const statements = parseStatements(definition);
  if (!statements || statements.length !== 1) return { kind: 'unknown', sources: [UNKNOWN_SOURCE] };
  const stmt = statements[0]!;
  const view = stmt['ViewStmt'] as Node | undefined;
  const matview = (stmt['CreateTableAsStmt'] as Node | undefined)?.['objtype'] === 'OBJECT_MATVIEW' ? (stmt['CreateTableAsStmt'] as Node) : undefined;
  const query = view ? (view['query'] as Node) : matview ? (matview['query'] as Node) : stmt;
  const names = view ? (view['aliases'] as Node[] | undefined) : ((matview?.['into'] as Node | undefined)?.['colNames'] as Node[] | undefined);
  if (!query['SelectStmt']) return { kind: 'unknown', sources: [UNKNOWN_SOURCE] };
  const analysis = lineageOfStatement(query, views);
  if (analysis.kind === 'columns') {
    // `CREATE VIEW v (a, b) AS SELECT * FROM t`: which of t's columns became a, only the catalog knows.
    if ((names?.length ?? 0) > 0 && analysis.columns.some((c) => c.star)) return { kind: 'unknown', sources: everySource({ kind: 'columns', columns: analysis.columns }) };
    return { kind: 'columns', columns: renamed(analysis.columns, names) };
  }
  return { kind: 'unknown', sources: analysis.kind === 'opaque' ? [...analysis.reads, ...(analysis.reads.length === 0 ? [UNKNOWN_SOURCE] : [])] : [UNKNOWN_SOURCE] };
}

/** `FROM v AS x(a, b)` renames the view's columns, as it does a subquery's. */
function renamedShape(shape: ViewShape, names: Node[] | undefined): ViewShape {
  return shape.kind === 'columns' ? { kind: 'columns', columns: renamed(shape.columns, names) } : shape;
}

/** Everything a view may read, whatever column of it is taken. */
function everySource(shape: ViewShape): SourceColumn[] {
  if (shape.kind === 'unknown') return [...shape.sources];
  return shape.columns.flatMap((c) => [...c.sources, ...(c.star ? [{ ...(c.star.table ? { table: c.star.table } : {}), column: '*' }] : [])]);
}

/**
 * What a statement whose shape cannot be followed reads: every column it mentions, and, for each
 * view it names, everything that view may read (its columns' own names do not say).
 */
function opaqueReads(statements: readonly Node[], views: ViewContext | undefined): SourceColumn[] {
  const reads = mentionedColumns(statements);
  if (!views) return reads;
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(walk);
    const rv = (node as Node)['RangeVar'] as Node | undefined;
    if (rv) {
      const shape = viewShape(String(rv['relname']), rv['schemaname'] as string | undefined, views);
      if (shape) reads.push(...everySource(shape));
    }
    Object.values(node).forEach(walk);
  };
  statements.forEach(walk);
  return dedupe(reads);
}

/** The cheap test first: a statement that changes views starts so (after any comments), and parsing a large one is not. */
const CHANGES_VIEWS = /^(?:\s|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:TEMP|TEMPORARY|RECURSIVE|MATERIALIZED)\s+)*VIEW|(?:ALTER|DROP)\s+(?:MATERIALIZED\s+)?VIEW)\b/i;

/** A change a statement makes to views; see viewChange. */
export type ViewChange =
  | { readonly kind: 'define'; readonly name: string; readonly schema: string | undefined }
  | { readonly kind: 'rename'; readonly name: string; readonly schema: string | undefined; readonly newName: string }
  | { readonly kind: 'change' };

/**
 * What a statement does to views, for a caller that keeps their definitions: `define` for
 * CREATE [OR REPLACE] [MATERIALIZED] VIEW (the statement text itself is then a definition
 * ViewDefinitions may return), `rename` for ALTER [MATERIALIZED] VIEW … RENAME TO (the view keeps
 * its schema), `change` for other ALTERs and DROP. Undefined for anything else; cheap for
 * statements that do not mention VIEW.
 */
export function viewChange(sql: string): ViewChange | undefined {
  if (!CHANGES_VIEWS.test(sql)) return undefined;
  const statements = parseStatements(sql);
  if (!statements || statements.length !== 1) return undefined;
  const stmt = statements[0]!;
  const created = ((stmt['ViewStmt'] as Node | undefined)?.['view'] ??
    ((stmt['CreateTableAsStmt'] as Node | undefined)?.['objtype'] === 'OBJECT_MATVIEW' ? ((stmt['CreateTableAsStmt'] as Node)['into'] as Node)['rel'] : undefined)) as Node | undefined;
  if (created) return { kind: 'define', name: String(created['relname']), schema: created['schemaname'] as string | undefined };
  const objects = ['OBJECT_VIEW', 'OBJECT_MATVIEW'];
  const drop = stmt['DropStmt'] as Node | undefined;
  const rename = stmt['RenameStmt'] as Node | undefined;
  const alter = (stmt['AlterTableStmt'] ?? stmt['AlterObjectSchemaStmt']) as Node | undefined;
  const renamedRelation = rename?.['relation'] as Node | undefined;
  if (rename && objects.includes(String(rename['renameType'])) && renamedRelation && typeof rename['newname'] === 'string') {
    return { kind: 'rename', name: String(renamedRelation['relname']), schema: renamedRelation['schemaname'] as string | undefined, newName: rename['newname'] };
  }
  if (
    (drop && objects.includes(String(drop['removeType']))) ||
    (rename && (objects.includes(String(rename['renameType'])) || objects.includes(String(rename['relationType'])))) ||
    (alter && (objects.includes(String(alter['objtype'])) || objects.includes(String(alter['objectType']))))
  ) {
    return { kind: 'change' };
  }
  return undefined;
}

/** Every source column an expression reads, at any depth (function arguments, CASE, subqueries…). */
function collect(node: unknown, scope: Scope): SourceColumn[] {
  if (node === null || typeof node !== 'object') return [];
  if (Array.isArray(node)) return node.flatMap((n) => collect(n, scope));
  const obj = node as Node;
  if (obj['ColumnRef']) return resolveColumnRef(obj['ColumnRef'] as Node, scope).sources;
  if (obj['SubLink']) {
    const link = obj['SubLink'] as Node;
    const sub = link['subselect'] as Node;
    const inner = sub['SelectStmt'] ? analyzeSelect(sub['SelectStmt'] as Node, scope) : [];
    const outputs = inner.flatMap((c) => [...c.sources, ...(c.star ? [{ ...(c.star.table ? { table: c.star.table } : {}), column: '*' }] : [])]);
    // `x IN (SELECT …)` / `x = ANY (…)`: the tested expression is part of the value too.
    return [...outputs, ...collect(link['testexpr'], scope)];
  }
  if (obj['FuncCall']) {
    const call = obj['FuncCall'] as Node;
    // count(x) says how many, never what: it reveals no value of x.
    if (functionName({ functions: [[obj]] }) === 'count' && !call['agg_filter']) return [];
  }
  if (obj['SelectStmt']) return analyzeSelect(obj['SelectStmt'] as Node, scope).flatMap((c) => c.sources);
  return Object.values(obj).flatMap((v) => collect(v, scope));
}

/** The name PostgreSQL gives an output column without an alias (FigureColname, simplified). */
function columnName(val: Node): string | undefined {
  const ref = val['ColumnRef'] as Node | undefined;
  if (ref) {
    const fields = ref['fields'] as Node[];
    return stringOf(fields[fields.length - 1]);
  }
  const cast = val['TypeCast'] as Node | undefined;
  if (cast) return columnName(cast['arg'] as Node) ?? typeName(cast['typeName'] as Node);
  const call = val['FuncCall'] as Node | undefined;
  if (call) {
    const names = call['funcname'] as Node[];
    return stringOf(names[names.length - 1]);
  }
  if (val['CaseExpr']) return 'case';
  if (val['CoalesceExpr']) return 'coalesce';
  if (val['SubLink']) {
    const link = val['SubLink'] as Node;
    if (link['subLinkType'] === 'EXISTS_SUBLINK') return 'exists';
    if (link['subLinkType'] === 'ARRAY_SUBLINK') return 'array';
    const sub = (link['subselect'] as Node)['SelectStmt'] as Node | undefined;
    const first = (sub?.['targetList'] as Node[] | undefined)?.[0]?.['ResTarget'] as Node | undefined;
    if (first) return (first['name'] as string | undefined) ?? columnName(first['val'] as Node);
  }
  return '?column?';
}

function typeName(node: Node | undefined): string | undefined {
  const names = node?.['names'] as Node[] | undefined;
  return names ? stringOf(names[names.length - 1]) : undefined;
}

function functionName(rf: Node): string | undefined {
  const first = (rf['functions'] as unknown[][] | undefined)?.[0];
  const item = (Array.isArray(first) ? first[0] : ((first as Node | undefined)?.['List'] as Node | undefined)?.['items']) as Node | Node[] | undefined;
  const call = (Array.isArray(item) ? item[0] : item)?.['FuncCall'] as Node | undefined;
  const names = call?.['funcname'] as Node[] | undefined;
  return names ? stringOf(names[names.length - 1]) : undefined;
}

function aliasOf(node: Node): string | undefined {
  return (node['alias'] as Node | undefined)?.['aliasname'] as string | undefined;
}

function aliasColumns(node: Node): Node[] | undefined {
  return (node['alias'] as Node | undefined)?.['colnames'] as Node[] | undefined;
}

function stringOf(node: Node | undefined): string | undefined {
  return ((node?.['String'] as Node | undefined)?.['sval'] as string | undefined) ?? undefined;
}

function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function dedupe(sources: readonly SourceColumn[]): SourceColumn[] {
  const seen = new Map<string, SourceColumn>();
  for (const s of sources) seen.set(`${s.table ?? ''}\u0000${s.column}`, s);
  return [...seen.values()];
}
