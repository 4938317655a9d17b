import { Injectable } from '@nestjs/common';
import type { auditV1 } from '@tracegate/contracts';
import { AuditError } from '../errors.js';
import { SessionQueryRepository } from '../repositories/session-query.repository.js';
import { toProtoSession, toProtoStatement } from './proto-mapping.js';

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

/** Answers the read RPCs from the projection. */
@Injectable()
export class SessionReader {
  constructor(private readonly queries: SessionQueryRepository) {}

  async list(request: auditV1.ListSessionsRequest): Promise<auditV1.Session[]> {
    if (request.limit > MAX_LIST_LIMIT) throw AuditError.invalidArgument('limit', `${request.limit} is more than ${MAX_LIST_LIMIT}; ask for fewer sessions (0 means ${DEFAULT_LIST_LIMIT})`);
    const sessions = await this.queries.list({
      target: request.target,
      identityId: request.identityId,
      identityName: request.identityName,
      limit: request.limit || DEFAULT_LIST_LIMIT,
    });
    return sessions.map(toProtoSession);
  }

  async get(id: string): Promise<auditV1.GetSessionResponse> {
    if (!id) throw AuditError.invalidArgument('id', 'is required: the session id `tracegate sessions list` shows');
    const session = await this.queries.findSession(id);
    if (!session) throw AuditError.sessionNotFound(id);
    const statements = await this.queries.statementsOf(id);
    return { session: toProtoSession(session), statements: statements.map(toProtoStatement) };
  }
}
