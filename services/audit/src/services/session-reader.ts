import { Injectable } from '@nestjs/common';
import type { auditV1 } from '@tracegate/contracts';
import { AuditError } from '../errors.js';
import { ApprovalReviewRepository } from '../repositories/approval-review.repository.js';
import { SessionQueryRepository } from '../repositories/session-query.repository.js';
import { toProtoSession, toProtoStatement } from './proto-mapping.js';
import { SessionAccess, type SessionCaller } from './session-access.js';

const INTERNAL: SessionCaller = { kind: 'internal' };

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

/** Answers the read RPCs from the projection. */
@Injectable()
export class SessionReader {
  constructor(
    private readonly queries: SessionQueryRepository,
    private readonly access: SessionAccess,
    private readonly reviews: ApprovalReviewRepository,
  ) {}

  /** Sessions newest first; an identity sees those its reader grants cover (each read recorded). */
  async list(request: auditV1.ListSessionsRequest, caller: SessionCaller = INTERNAL): Promise<auditV1.Session[]> {
    if (request.limit > MAX_LIST_LIMIT) throw AuditError.invalidArgument('limit', `${request.limit} is more than ${MAX_LIST_LIMIT}; ask for fewer sessions (0 means ${DEFAULT_LIST_LIMIT})`);
    const sessions = await this.queries.list({
      target: request.target,
      identityId: request.identityId,
      identityName: request.identityName,
      limit: request.limit || DEFAULT_LIST_LIMIT,
    });
    return (await this.access.visible(caller, sessions)).map(toProtoSession);
  }

  /** One session and its statements; an identity needs a reader grant covering it (the read is recorded first). */
  async get(id: string, caller: SessionCaller = INTERNAL): Promise<auditV1.GetSessionResponse> {
    if (!id) throw AuditError.invalidArgument('id', 'is required: the session id `tracegate sessions list` shows');
    const session = await this.queries.findSession(id);
    if (!session) throw AuditError.sessionNotFound(id);
    await this.access.admit(caller, session);
    const statements = await this.queries.statementsOf(id);
    const reviews = await this.reviews.byIds([...new Set(statements.map((s) => s.approvalRequestId).filter(Boolean))]);
    const results = statements.some((s) => s.rowsRecorded > 0) ? await this.queries.resultRowsOf(id) : new Map<string, (string | null)[][]>();
    return {
      session: toProtoSession(session),
      statements: statements.map((s) => toProtoStatement(s, reviews.get(s.approvalRequestId), results.get(s.statementId))),
    };
  }
}
