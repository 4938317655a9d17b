import { Injectable } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import type { auditV1 } from '@tracegate/contracts';
import type { SessionCaller } from './session-access.js';
import { SessionReader } from './session-reader.js';

/** The longest pause a real-time replay keeps between two statements: an idle hour plays as this. */
export const REPLAY_MAX_GAP_MS = 10_000;

/**
 * Plays a session's statements in the order they were requested, each with its decision and
 * outcome. In real time it waits between statements as long as the session did (each pause capped
 * at {@link REPLAY_MAX_GAP_MS}), so a reviewer watches it unfold.
 */
@Injectable()
export class SessionReplayer {
  constructor(private readonly reader: SessionReader) {}

  async *replay(id: string, realTime: boolean, caller: SessionCaller, signal?: AbortSignal): AsyncGenerator<auditV1.ReplaySessionResponse> {
    const { statements } = await this.reader.get(id, caller);
    let previous: number | undefined;
    for (const statement of statements) {
      const at = statement.at ? statement.at.seconds * 1000 + Math.floor(statement.at.nanos / 1e6) : undefined;
      if (realTime && previous !== undefined && at !== undefined && at > previous) {
        await sleep(Math.min(at - previous, REPLAY_MAX_GAP_MS), undefined, { signal });
      }
      if (at !== undefined) previous = at;
      yield { statement };
    }
  }
}
