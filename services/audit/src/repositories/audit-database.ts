import { openServiceDatabase } from '@tracegate/runtime/service-database';
import { type DataSource } from 'typeorm';
import { SessionEntity } from '../entities/session.entity.js';
import { StatementEntity } from '../entities/statement.entity.js';
import { AuditInitial1763790000000 } from '../migrations/1763790000000-audit-initial.js';
import { AuditIntegrity1763810000000 } from '../migrations/1763810000000-audit-integrity.js';
import { StatementTraceAndApproval1763830000000 } from '../migrations/1763830000000-statement-trace-and-approval.js';
import { SessionEventsClaim1763840000000 } from '../migrations/1763840000000-session-events-claim.js';
import { StatementResults1763860000000 } from '../migrations/1763860000000-statement-results.js';
import { ApprovalReviews1763850000000 } from '../migrations/1763850000000-approval-reviews.js';
import { TracesAndReaderGrants1763800000000 } from '../migrations/1763800000000-traces-and-reader-grants.js';
import { TracesProjection1763820000000 } from '../migrations/1763820000000-traces-projection.js';
import { ReaderGrantEntity } from '../grants/entities/reader-grant.entity.js';
import { TraceEntity } from '../traces/entities/trace.entity.js';

export const AUDIT_SCHEMA = 'audit';
export const AUDIT_DATA_SOURCE = Symbol('AUDIT_DATA_SOURCE');

/**
 * The audit projection lives in its own schema, so it can share a database with the other
 * services (the all-in-one does). Migrations are explicit SQL and run at start; the schema is
 * never synchronised from the entities. Dropping the schema and restarting rebuilds it from the log.
 */
export function openAuditDatabase(databaseUrl: string): Promise<DataSource> {
  return openServiceDatabase({ databaseUrl, schema: AUDIT_SCHEMA, entities: [SessionEntity, StatementEntity, TraceEntity, ReaderGrantEntity], migrations: [AuditInitial1763790000000, TracesAndReaderGrants1763800000000, AuditIntegrity1763810000000, TracesProjection1763820000000, StatementTraceAndApproval1763830000000, SessionEventsClaim1763840000000, ApprovalReviews1763850000000, StatementResults1763860000000], applicationName: 'tracegate-audit' });
}
