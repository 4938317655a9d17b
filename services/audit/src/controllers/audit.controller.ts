import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import { Observable } from 'rxjs';
import { auditV1 } from '@tracegate/contracts';
import { ProjectionRebuilder } from '../services/projection-rebuilder.js';
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
    private readonly rebuilder: ProjectionRebuilder,
  ) {}

  async listSessions(request: auditV1.ListSessionsRequest): Promise<auditV1.ListSessionsResponse> {
    return { sessions: await this.reader.list(request) };
  }

  getSession(request: auditV1.GetSessionRequest): Promise<auditV1.GetSessionResponse> {
    return this.reader.get(request.id);
  }

  replaySession(request: auditV1.ReplaySessionRequest): Observable<auditV1.ReplaySessionResponse> {
    return streamOf((signal) => this.replayer.replay(request.id, request.realTime, signal));
  }

  rebuildProjection(): Observable<auditV1.RebuildProjectionResponse> {
    return streamOf((signal) => this.rebuilder.run(signal));
  }

  async verifySession(request: auditV1.VerifySessionRequest): Promise<auditV1.VerifySessionResponse> {
    const verdict = await this.verifier.verify(request.id);
    return { intact: verdict.intact, eventsChecked: verdict.eventsChecked, problems: [...verdict.problems] };
  }
}

/** A server stream from an async generator; a caller that goes away (Ctrl-C) aborts it. */
function streamOf<T>(produce: (signal: AbortSignal) => AsyncGenerator<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    const abort = new AbortController();
    void (async () => {
      try {
        for await (const item of produce(abort.signal)) {
          if (abort.signal.aborted) return;
          subscriber.next(item);
        }
        subscriber.complete();
      } catch (error) {
        if (!abort.signal.aborted) subscriber.error(error);
      }
    })();
    return () => abort.abort();
  });
}
