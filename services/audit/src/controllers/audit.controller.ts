import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { auditV1 } from '@tracegate/contracts';
import { AuditError, AuditErrorCode } from '../errors.js';
import { SessionReader } from '../services/session-reader.js';
import { AuditErrorFilter } from './audit-error.filter.js';
import { InternalTokenGuard } from './internal-token.guard.js';

@Controller()
@UseGuards(InternalTokenGuard)
@UseFilters(AuditErrorFilter)
@auditV1.AuditServiceControllerMethods()
export class AuditController implements auditV1.AuditServiceController {
  constructor(private readonly reader: SessionReader) {}

  async listSessions(request: auditV1.ListSessionsRequest): Promise<auditV1.ListSessionsResponse> {
    return { sessions: await this.reader.list(request) };
  }

  getSession(request: auditV1.GetSessionRequest): Promise<auditV1.GetSessionResponse> {
    return this.reader.get(request.id);
  }

  replaySession(): Observable<auditV1.ReplaySessionResponse> {
    throw new AuditError(AuditErrorCode.NotImplemented, 'session replay is not available yet; `tracegate sessions show <id>` lists the statements in order');
  }

  verifySession(): Promise<auditV1.VerifySessionResponse> {
    throw new AuditError(AuditErrorCode.NotImplemented, 'session verification is not available yet');
  }
}
