import { maskingV1, SERVICE_PROTOS } from '@tracegate/contracts';
import { grpcClient, INTERNAL_TOKEN_METADATA, type PromiseClient } from '@tracegate/runtime';

/** Masks the free text of a trace before it is stored or emitted. */
export interface TraceRedactor {
  /** The texts with every secret and sensitive value replaced, in the same order. */
  redact(texts: readonly string[]): Promise<string[]>;
  close(): void;
}

export const TRACE_REDACTOR = Symbol('TRACE_REDACTOR');

/** The masking profile traces are masked with. */
export const TRACE_MASKING_PROFILE = 'default';

/** The masking service's Redact RPC, one call per text, concurrently. */
export class MaskingServiceRedactor implements TraceRedactor {
  private readonly masking: PromiseClient<maskingV1.MaskingServiceClient>;

  constructor(readonly address: string, internalToken: string) {
    this.masking = grpcClient<maskingV1.MaskingServiceClient>(SERVICE_PROTOS.masking.files[0], 'tracegate.masking.v1.MaskingService', address, {
      metadata: { [INTERNAL_TOKEN_METADATA]: internalToken },
      deadlineMs: 10_000,
    });
  }

  redact(texts: readonly string[]): Promise<string[]> {
    return Promise.all(texts.map(async (text) => (text === '' ? '' : (await this.masking.redact({ profile: TRACE_MASKING_PROFILE, text })).text)));
  }

  close(): void {
    this.masking.close();
  }
}
