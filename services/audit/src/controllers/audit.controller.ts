import { Controller, UseFilters } from '@nestjs/common';
import type { Metadata } from '@grpc/grpc-js';
import { Observable } from 'rxjs';
import { auditV1 } from '@tracegate/contracts';
import { SessionExporter } from '../exports/services/session-exporter.js';
import { ProjectionRebuilder } from '../services/projection-rebuilder.js';
import { SessionAccess } from '../services/session-access.js';
import { SessionReader } from '../services/session-reader.js';
import { SessionReplayer } from '../services/session-replayer.js';
import { SessionVerifier } from '../services/session-verifier.js';
import { AuditErrorFilter } from './audit-error.filter.js';

/**
 * Reads (ListSessions, GetSession, ReplaySession) take the internal token or an identity's API
 * key under a reader grant; VerifySession and RebuildProjection take the internal token only;
 * Export takes an identity's API key and a reviewer's approval.
 */
@Controller()
@UseFilters(AuditErrorFilter)
@auditV1.AuditServiceControllerMethods()
export class AuditController implements auditV1.AuditServiceController {
  constructor(
    private readonly reader: SessionReader,
    private readonly replayer: SessionReplayer,
    private readonly verifier: SessionVerifier,
    private readonly rebuilder: ProjectionRebuilder,
    private readonly access: SessionAccess,
    private readonly exporter: SessionExporter,
  ) {}

  async listSessions(request: auditV1.ListSessionsRequest, metadata?: Metadata): Promise<auditV1.ListSessionsResponse> {
    return { sessions: await this.reader.list(request, await this.access.reader(metadata)) };
  }

  async getSession(request: auditV1.GetSessionRequest, metadata?: Metadata): Promise<auditV1.GetSessionResponse> {
    return this.reader.get(request.id, await this.access.reader(metadata));
  }

  replaySession(request: auditV1.ReplaySessionRequest, metadata?: Metadata): Observable<auditV1.ReplaySessionResponse> {
    const replayer = this.replayer;
    const access = this.access;
    return streamOf(async function* (signal) {
      yield* replayer.replay(request.id, request.realTime, await access.reader(metadata), signal);
    });
  }

  rebuildProjection(_request: auditV1.RebuildProjectionRequest, metadata?: Metadata): Observable<auditV1.RebuildProjectionResponse> {
    return streamOf((signal) => {
      this.access.requireInternal(metadata, 'RebuildProjection');
      return this.rebuilder.run(signal);
    });
  }

  export(request: auditV1.ExportRequest, metadata?: Metadata): Observable<auditV1.ExportResponse> {
    const exporter = this.exporter;
    const access = this.access;
    return streamOf(async function* (signal) {
      yield* exporter.export(request, await access.reader(metadata), signal);
    });
  }

  async verifySession(request: auditV1.VerifySessionRequest, metadata?: Metadata): Promise<auditV1.VerifySessionResponse> {
    this.access.requireInternal(metadata, 'VerifySession');
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
        // Inside the try: a refusal thrown while starting reaches the caller as its status.
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
