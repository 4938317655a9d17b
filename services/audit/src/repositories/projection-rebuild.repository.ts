import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { AUDIT_DATA_SOURCE } from './audit-database.js';

/** Where a rebuild builds the fresh projection before the switch. */
export const REBUILD_SCHEMA = 'audit_rebuild';

/** The tables the session projection writes: what a rebuild makes afresh and swaps in. */
const PROJECTION_TABLES = ['sessions', 'statements', 'session_events', 'statement_results'] as const;

/**
 * The fresh schema of a rebuild and the switch-over. The fresh tables are made `LIKE` the live
 * ones (columns, defaults, checks, keys and indexes), so they always have the shape the
 * migrations gave the live tables; the switch moves them into `audit` in one transaction, so a
 * reader sees either the old projection or the new one, never a mix.
 */
@Injectable()
export class ProjectionRebuildRepository {
  constructor(@Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource) {}

  async prepareFreshSchema(): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.query(`DROP SCHEMA IF EXISTS ${REBUILD_SCHEMA} CASCADE`);
      await manager.query(`CREATE SCHEMA ${REBUILD_SCHEMA}`);
      for (const table of PROJECTION_TABLES) {
        await manager.query(`CREATE TABLE ${REBUILD_SCHEMA}.${table} (LIKE audit.${table} INCLUDING ALL)`);
      }
      await manager.query(`ALTER TABLE ${REBUILD_SCHEMA}.statements ADD FOREIGN KEY (session_id) REFERENCES ${REBUILD_SCHEMA}.sessions (id)`);
    });
  }

  /** Replaces the live projection tables with the rebuilt ones and records the new generation. */
  async switchOver(generation: string): Promise<void> {
    await this.db.transaction(async (manager) => {
      await manager.query(`LOCK TABLE ${PROJECTION_TABLES.map((t) => `audit.${t}`).join(', ')} IN ACCESS EXCLUSIVE MODE`);
      // LIKE names the copied indexes after their columns; give them back the migrations' names.
      const indexes: { schemaname: string; tablename: string; indexname: string; shape: string }[] = await manager.query(
        `SELECT schemaname, tablename, indexname, regexp_replace(indexdef, '^CREATE (UNIQUE )?INDEX \\S+ ON \\S+', '') AS shape
           FROM pg_indexes WHERE schemaname IN ('audit', $1) AND tablename = ANY($2::text[])`,
        [REBUILD_SCHEMA, [...PROJECTION_TABLES]],
      );
      const renames: [string, string][] = [];
      for (const fresh of indexes.filter((i) => i.schemaname === REBUILD_SCHEMA)) {
        const live = indexes.find((i) => i.schemaname === 'audit' && i.tablename === fresh.tablename && i.shape === fresh.shape);
        if (live && live.indexname !== fresh.indexname) renames.push([fresh.indexname, live.indexname]);
      }
      await manager.query(`DROP TABLE ${PROJECTION_TABLES.map((t) => `audit.${t}`).join(', ')}`);
      for (const table of PROJECTION_TABLES) await manager.query(`ALTER TABLE ${REBUILD_SCHEMA}.${table} SET SCHEMA audit`);
      for (const [from, to] of renames) await manager.query(`ALTER INDEX audit.${quoted(from)} RENAME TO ${quoted(to)}`);
      await manager.query(`UPDATE audit.projection SET generation = $1::uuid, created_at = now() WHERE name = 'sessions'`, [generation]);
      await manager.query(`DROP SCHEMA ${REBUILD_SCHEMA}`);
    });
  }

  async sessionCount(): Promise<number> {
    const rows: { n: string }[] = await this.db.query(`SELECT count(*)::text AS n FROM audit.sessions`);
    return Number(rows[0]?.n ?? 0);
  }
}

function quoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
