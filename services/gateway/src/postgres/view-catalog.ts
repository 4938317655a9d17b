import { analyzeStatementLineage, namedQueryLineage, viewChange, type ViewDefinitions } from '@tracegate/masking-engine';
import type { Logger } from '@tracegate/runtime';
import { serializeFrontend } from '../protocol/postgres/index.js';
import { BackendFramer, BackendType, readReportFields } from './backend-framer.js';
import type { StatementLineage, TargetViews, ViewCatalog } from './ports.js';
import { loginToTarget, type TargetEndpoint } from './upstream-login.js';

/**
 * Every relation's name, and each view's and materialized view's definition as PostgreSQL
 * prints it (star expanded, columns qualified). System schemas' views are named but not
 * defined: no column rule targets a catalog table.
 */
const CATALOG_QUERY = `SELECT n.nspname, c.relname,
  CASE WHEN c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') THEN pg_catalog.pg_get_viewdef(c.oid) END
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')`;

/** How long a name found nowhere stays known as absent: a statement naming a missing table does not read the catalog each time. */
const ABSENT_FOR_MS = 10_000;
/**
 * How long a reading serves. Another session's CREATE OR REPLACE or ALTER of a view this reading
 * already knows changes no name a statement could miss: only age brings that in.
 */
const READING_SERVES_MS = 30_000;
/** After a failed read, how long the unreadable stand-in serves before the next attempt. */
const RETRY_AFTER_MS = 5_000;
/** Statements whose lineage one set of views remembers … */
const LINEAGE_CACHE_SIZE = 512;
/** … if they are no longer than this: a bulk INSERT … RETURNING is not kept in memory for its lineage. */
const LINEAGE_CACHED_TEXT = 16 * 1024;

export interface CatalogRelation {
  readonly schema: string;
  readonly name: string;
  /** The view's query; undefined for a table, or a view of a system schema. */
  readonly definition: string | undefined;
}

const DECLARES = /^\s*(?:DECLARE|PREPARE)\b/i;
const TEMP_SCHEMA = /^pg_temp_\d+$/;
const WRITE = /^\s*(?:INSERT|UPDATE|DELETE|MERGE)\b/i;
const RETURNING = /\bRETURNING\b/i;
const NO_ROWS: StatementLineage = { kind: 'no-rows' };

/**
 * A set of views as the masking engine sees them, remembering each statement's lineage (the
 * views do not change under it: a new reading is a new object, with its own) and which
 * relation names an analysis looked for that the views do not know.
 */
class TrackedViews implements ViewDefinitions {
  private readonly lineages = new Map<string, { readonly lineage: StatementLineage; readonly missed: readonly string[] }>();
  /** Filled during an analysis: relation names asked for that these views do not know. */
  private missing: string[] = [];

  constructor(readonly views: TargetViews) {}

  definitions(name: string, schema: string | undefined): readonly string[] {
    if (!this.views.knows(name, schema)) this.missing.push(schema === undefined ? name : `${schema}.${name}`);
    return this.views.definitions(name, schema);
  }

  /** The lineage of a statement's result (for DECLARE and PREPARE, of their query), and the relations it named that these views do not know. */
  lineageOf(text: string): { readonly lineage: StatementLineage; readonly missed: readonly string[] } {
    const cached = this.lineages.get(text);
    if (cached) return cached;
    this.missing = [];
    const lineage = DECLARES.test(text) ? (namedQueryLineage(text, this)?.lineage ?? NO_ROWS) : analyzeStatementLineage(text, this);
    const result = { lineage, missed: this.missing };
    this.missing = [];
    if (text.length > LINEAGE_CACHED_TEXT) return result;
    if (this.lineages.size >= LINEAGE_CACHE_SIZE) this.lineages.delete(this.lineages.keys().next().value!);
    this.lineages.set(text, result);
    return result;
  }
}

/** One TrackedViews per set of views, shared by the sessions that use it (and its memory of view shapes with it). */
const trackedViews = new WeakMap<TargetViews, TrackedViews>();

function tracked(views: TargetViews): TrackedViews {
  let found = trackedViews.get(views);
  if (!found) {
    found = new TrackedViews(views);
    trackedViews.set(views, found);
  }
  return found;
}

/** One reading of a target's catalog. */
export class CatalogSnapshot implements TargetViews {
  /** `schema.name` of every relation, with its definition when it is a view. */
  private readonly qualified = new Map<string, string | undefined>();
  /** Bare name: the definitions of views so named in any schema ([] for tables only). */
  private readonly bare = new Map<string, string[]>();
  /** Temporary views by name, from every session's temporary schema (for `pg_temp.name`). */
  private readonly temporary = new Map<string, string[]>();

  /** Names (`name` or `schema.name`) the reading was asked to find and did not: known absent for a while. */
  private readonly absent: ReadonlySet<string>;

  constructor(
    relations: readonly CatalogRelation[],
    looking: Iterable<string> = [],
    private readonly readAt = Date.now(),
  ) {
    for (const relation of relations) {
      this.qualified.set(`${relation.schema}.${relation.name}`, relation.definition);
      const definitions = this.bare.get(relation.name) ?? [];
      if (relation.definition !== undefined) definitions.push(relation.definition);
      this.bare.set(relation.name, definitions);
      // `pg_temp.v` names the session's own temporary schema, pg_temp_N in the catalog: which N,
      // only its backend knows, so any session's temporary view of that name counts.
      if (TEMP_SCHEMA.test(relation.schema)) {
        if (!this.qualified.has(`pg_temp.${relation.name}`)) this.qualified.set(`pg_temp.${relation.name}`, undefined);
        if (relation.definition !== undefined) this.temporary.set(relation.name, [...(this.temporary.get(relation.name) ?? []), relation.definition]);
      }
    }
    this.absent = new Set([...looking].filter((key) => !this.qualified.has(key) && !this.bare.has(key)));
  }

  knows(name: string, schema: string | undefined): boolean {
    const key = schema === undefined ? name : `${schema}.${name}`;
    if ((schema === undefined ? this.bare : this.qualified).has(key)) return true;
    return this.absent.has(key) && Date.now() - this.readAt < ABSENT_FOR_MS;
  }

  definitions(name: string, schema: string | undefined): readonly string[] {
    if (schema === 'pg_temp') return this.temporary.get(name) ?? [];
    if (schema !== undefined) {
      const definition = this.qualified.get(`${schema}.${name}`);
      return definition === undefined ? [] : [definition];
    }
    return this.bare.get(name) ?? [];
  }
}

/**
 * Stands in while the catalog cannot be read: any relation may be a view of unknown shape, so
 * each column a statement reads from one derives from an unknown column and a column rule masks
 * it whole — the engine's rule for a view it cannot read.
 */
class UnreadableCatalog implements TargetViews {
  knows(): boolean {
    return true;
  }
  definitions(): readonly string[] {
    return [''];
  }
}

interface TargetState {
  views?: TargetViews;
  readAt?: number;
  failedAt?: number;
  reading?: Promise<TargetViews>;
  /** A read queued behind the one in flight, shared by everyone who asks meanwhile. */
  next?: Promise<TargetViews>;
  /** Names statements looked for and did not find since the last read began. */
  looked: Set<string>;
}

export interface ViewCatalogOptions {
  readonly timeoutMs: number;
  readonly maxMessageLength: number;
  readonly logger: Logger;
  /** How the catalog is read (tests replace it); by default over a side connection, see readTargetCatalog. */
  readonly read?: (endpoint: TargetEndpoint) => Promise<CatalogRelation[]>;
}

/**
 * The views of each target, read once and shared by all sessions on it, read again when a
 * statement names a relation not yet known (another session made it) or a session changed views
 * itself. A failed read keeps the last reading; with none, the unreadable stand-in masks
 * whole whatever may come from a view, and the read is retried a few seconds later.
 */
export class TargetViewCatalog implements ViewCatalog {
  private readonly targets = new Map<string, TargetState>();
  private readonly read: (endpoint: TargetEndpoint) => Promise<CatalogRelation[]>;

  constructor(private readonly options: ViewCatalogOptions) {
    this.read = options.read ?? ((endpoint) => readTargetCatalog(endpoint, options));
  }

  current(target: string): TargetViews | Promise<TargetViews> | undefined {
    const state = this.targets.get(target);
    const scheduled = state?.next ?? state?.reading;
    if (scheduled) return scheduled;
    if (!state?.views) return undefined;
    const now = Date.now();
    if (state.failedAt !== undefined ? now - state.failedAt >= RETRY_AFTER_MS : now - (state.readAt ?? 0) >= READING_SERVES_MS) return undefined;
    return state.views;
  }

  refresh(target: string, endpoint: TargetEndpoint, looking: readonly string[] = []): Promise<TargetViews> {
    const state = this.state(target);
    for (const name of looking) state.looked.add(name);
    if (state.next) return state.next;
    if (!state.reading) return this.startReading(target, state, endpoint);
    // The read in flight may have begun before what this caller needs to see was committed.
    state.next = state.reading.then(() => {
      state.next = undefined;
      return this.startReading(target, state, endpoint);
    });
    return state.next;
  }

  private state(target: string): TargetState {
    let state = this.targets.get(target);
    if (!state) {
      state = { looked: new Set() };
      this.targets.set(target, state);
    }
    return state;
  }

  private startReading(target: string, state: TargetState, endpoint: TargetEndpoint): Promise<TargetViews> {
    const looked = state.looked;
    state.looked = new Set();
    const reading = this.read(endpoint).then(
      (relations) => {
        const snapshot = new CatalogSnapshot(relations, looked);
        state.views = snapshot;
        state.readAt = Date.now();
        state.failedAt = undefined;
        return snapshot;
      },
      (error: unknown) => {
        // The message names the target and what failed, never the credential.
        this.options.logger.warn({ target, err: (error as Error).message }, 'the target\'s views could not be read; columns read through views are masked whole until they can be');
        state.failedAt = Date.now();
        if (!state.views || state.views instanceof UnreadableCatalog) state.views = new UnreadableCatalog();
        return state.views;
      },
    );
    const inFlight: Promise<TargetViews> = reading.finally(() => {
      if (state.reading === inFlight) state.reading = undefined;
    });
    state.reading = inFlight;
    return reading;
  }
}

/**
 * One session's view of its target's views: the shared reading, plus the views this session
 * defined itself. Those are kept from the CREATE VIEW text, because until its transaction
 * commits no other connection — the catalog's side connection included — can see them.
 */
export class SessionViews {
  private base: TargetViews | undefined;
  private combined: TrackedViews | undefined;
  /** Definitions from this session's own CREATE VIEW statements, by `schema.name` or bare name as written. */
  private readonly own = new Map<string, OwnDefinition[]>();
  /** How many definitions and renames `own` holds: past OWN_DEFINITIONS_KEPT the session's views are unknown. */
  private ownCount = 0;
  /** The read the session asked for after its change to views was committed: its next lineage waits for it. */
  private reading: Promise<TargetViews> | undefined;

  constructor(
    private readonly catalog: ViewCatalog,
    private readonly target: string,
    private readonly endpoint: TargetEndpoint,
  ) {}

  /** The views the session's statements are analysed against now (for a cursor's query as it is declared). */
  get views(): ViewDefinitions | undefined {
    return this.combined;
  }

  /**
   * The lineage of a statement's result through the target's views. Reads the catalog first on
   * first use, after the session changed views, and when the statement names a relation the
   * reading does not know — a view another session made since.
   */
  async lineage(text: string): Promise<StatementLineage> {
    // A write without RETURNING has no rows to mask: a bulk INSERT is not parsed for nothing.
    if (WRITE.test(text) && !RETURNING.test(text)) return NO_ROWS;
    let views = await this.current(undefined);
    let result = views.lineageOf(text);
    if (result.missed.length > 0) {
      views = await this.current(result.missed);
      result = views.lineageOf(text);
    }
    return result.lineage;
  }

  /**
   * Notes a statement the session is about to run: a view it defines or renames is known to the
   * session at once. (Other changes need no note: a reading that still has the old definition
   * over-masks; see `changed`.)
   */
  noteStatement(text: string): void {
    const change = viewChange(text);
    if (!change || change.kind === 'change') return;
    // A renamed view keeps its schema; until its transaction commits, only this session knows the new name.
    const key = change.kind === 'rename' ? (change.schema === undefined ? change.newName : `${change.schema}.${change.newName}`) : change.schema === undefined ? change.name : `${change.schema}.${change.name}`;
    const entry: OwnDefinition = change.kind === 'rename' ? { renamedFrom: { name: change.name, schema: change.schema } } : { text };
    // Past the bound the session's views are unknown already: nothing more is kept.
    if (this.ownCount > OWN_DEFINITIONS_KEPT) return;
    const own = this.own.get(key) ?? [];
    // A prepared CREATE VIEW executed again adds nothing new.
    if (own.some((o) => o.text === text)) return;
    this.own.set(key, [...own, entry]);
    this.ownCount += 1;
    this.combined = undefined;
  }

  /** The session's change to views is committed: read them again before the next lineage. */
  changed(): void {
    // At once, not at this session's next statement: the reading is shared, and other sessions
    // on the target wait for a read in flight rather than use the one it replaces.
    this.reading = this.catalog.refresh(this.target, this.endpoint);
  }

  /** The views now; `looking` set: read the catalog again first (naming what was not found). */
  private async current(looking: readonly string[] | undefined): Promise<TrackedViews> {
    const asked = this.reading;
    this.reading = undefined;
    const shared = await (asked ?? (looking === undefined ? this.catalog.current(this.target) : undefined) ?? this.catalog.refresh(this.target, this.endpoint, looking ?? []));
    if (shared !== this.base || !this.combined) {
      this.base = shared;
      // Sessions that defined no view of their own share the reading's lineages and view shapes;
      // one that defined more than memory should hold sees every relation as a view of unknown shape.
      this.combined = this.own.size === 0 ? tracked(shared) : new TrackedViews(this.ownCount > OWN_DEFINITIONS_KEPT ? new UnreadableCatalog() : new OwnViews(shared, this.own));
    }
    return this.combined;
  }
}

/** A view this session defined (its CREATE VIEW text), or renamed (the name it had). */
type OwnDefinition = { readonly text: string; readonly renamedFrom?: undefined } | { readonly text?: undefined; readonly renamedFrom: { readonly name: string; readonly schema: string | undefined } };

/** The shared reading with a session's own view definitions over it (both count where both have one). */
class OwnViews implements TargetViews {
  constructor(
    private readonly base: TargetViews,
    private readonly own: ReadonlyMap<string, readonly OwnDefinition[]>,
  ) {}

  knows(name: string, schema: string | undefined): boolean {
    return this.ownEntries(name, schema).length > 0 || this.base.knows(name, schema);
  }

  definitions(name: string, schema: string | undefined, depth = 0): readonly string[] {
    const own = this.ownEntries(name, schema).flatMap((entry) =>
      entry.text !== undefined ? [entry.text] : depth < OWN_RENAMES_FOLLOWED ? this.definitions(entry.renamedFrom.name, entry.renamedFrom.schema, depth + 1) : [''],
    );
    const base = this.base.definitions(name, schema);
    return own.length === 0 ? base : [...own, ...base];
  }

  private ownEntries(name: string, schema: string | undefined): readonly OwnDefinition[] {
    // A view created without a schema lands in whichever schema the search path gave it: it may be any.
    if (schema !== undefined) return [...(this.own.get(`${schema}.${name}`) ?? []), ...(this.own.get(name) ?? [])];
    return [...this.own].filter(([key]) => key === name || key.endsWith(`.${name}`)).flatMap(([, entries]) => entries);
  }
}

/** A session's own view definitions kept; past this many its views are all unknown (masked whole), not forgotten. */
const OWN_DEFINITIONS_KEPT = 1000;

/** Renames of renames followed back; past that (or round in a circle) the view is unknown (an unparsable definition). */
const OWN_RENAMES_FOLLOWED = 8;

/**
 * Reads a target's relations and view definitions over a short side connection of its own,
 * logged in with the same lease credentials as the session. The session's own backend
 * connection is never used: it is mid-protocol with the client (a portal half read, a COPY, a
 * transaction in an error state), and a query of ours there would change what the client sees
 * — its transaction status, its statement timeout, an aborted transaction refusing our SELECT.
 * A side connection costs a login, paid once per target and on the rare fresh read.
 */
export async function readTargetCatalog(endpoint: TargetEndpoint, options: { timeoutMs: number; maxMessageLength: number }): Promise<CatalogRelation[]> {
  const connection = await loginToTarget(endpoint, new Map([['application_name', 'tracegate view catalog']]), options);
  const socket = connection.socket;
  try {
    return await new Promise<CatalogRelation[]>((resolve, reject) => {
      const relations: CatalogRelation[] = [];
      let failure: string | undefined;
      const framer = new BackendFramer(options.maxMessageLength);
      const timer = setTimeout(() => reject(new Error(`the target's catalog did not answer within ${options.timeoutMs} ms`)), options.timeoutMs);
      const onFrames = (chunk: Buffer) => {
        try {
          framer.push(chunk, (frame) => {
            if (frame.type === BackendType.DataRow) relations.push(catalogRow(frame.body));
            else if (frame.type === BackendType.ErrorResponse) failure = readReportFields(frame.body).get('M') ?? 'an error';
            else if (frame.type === BackendType.ReadyForQuery) {
              clearTimeout(timer);
              if (failure !== undefined) reject(new Error(`reading the target's views failed: ${failure}`));
              else resolve(relations);
            }
          });
        } catch (error) {
          clearTimeout(timer);
          reject(error as Error);
        }
      };
      socket.on('data', onFrames);
      socket.once('close', () => {
        clearTimeout(timer);
        reject(new Error('the target closed the catalog connection'));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.write(serializeFrontend({ type: 'query', text: CATALOG_QUERY }));
      if (connection.afterLogin.length > 0) onFrames(connection.afterLogin);
      socket.resume();
    });
  } finally {
    socket.removeAllListeners('close');
    socket.removeAllListeners('data');
    socket.on('error', () => undefined);
    socket.end(serializeFrontend({ type: 'terminate' }));
  }
}

/** A DataRow of (nspname, relname, definition), all text. */
function catalogRow(body: Buffer): CatalogRelation {
  const values: (string | undefined)[] = [];
  let offset = 2;
  for (let i = 0; i < body.readInt16BE(0); i += 1) {
    const length = body.readInt32BE(offset);
    values.push(length < 0 ? undefined : body.toString('utf8', offset + 4, offset + 4 + length));
    offset += 4 + Math.max(length, 0);
  }
  return { schema: values[0] ?? '', name: values[1] ?? '', definition: values[2] };
}
