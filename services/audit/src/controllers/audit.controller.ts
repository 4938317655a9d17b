import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import { Observable } from 'rxjs';
import { auditV1 } from '@tracegate/contracts';
import { SessionReader } from '../services/session-reader.js';
import { SessionReplayer } from '../services/session-replayer.js';
import { SessionVerifier } from '../services/session-verifier.js';
import { AuditErrorFilter } from './audit-error.filter.js';
import { InternalTokenGuard } from './internal-token.guard.js';

@Controller()
@UseGuards(InternalTokenGuard)
@UseFilters(AuditErrorFilter)
@auditV1.AuditServiceControllerMethods()
export class AuditController implements auditV1.AuditServiceController {
  constructor(
    private readonly reader: SessionReader,
    private readonly replayer: SessionReplayer,
    private readonly verifier: SessionVerifier,
  ) {}

  async listSessions(request: auditV1.ListSessionsRequest): Promise<auditV1.ListSessionsResponse> {
    return { sessions: await this.reader.list(request) };
  }

  getSession(request: auditV1.GetSessionRequest): Promise<auditV1.GetSessionResponse> {
    return this.reader.get(request.id);
  }

  replaySession(request: auditV1.ReplaySessionRequest): Observable<auditV1.ReplaySessionResponse> {
    return new Observable((subscriber) => {
      // A caller that goes away (Ctrl-C on a real-time replay) ends the waits at once.
      const abort = new AbortController();
      void (async () => {
        try {
          for await (const response of this.replayer.replay(request.id, request.realTime, abort.signal)) {
            if (abort.signal.aborted) return;
            subscriber.next(response);
          }
          subscriber.complete();
        } catch (error) {
          if (!abort.signal.aborted) subscriber.error(error);
        }
      })();
      return () => abort.abort();
    });
  }

  async verifySession(request: auditV1.VerifySessionRequest): Promise<auditV1.VerifySessionResponse> {
    const verdict = await this.verifier.verify(request.id);
    return { intact: verdict.intact, eventsChecked: verdict.eventsChecked, problems: [...verdict.problems] };
  }
}
