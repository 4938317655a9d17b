import { Injectable } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { isFinal } from '../domain/approval.js';
import type { VersionedApproval } from '../repositories/approval.repository.js';

/**
 * Every committed change to a request, in this process: Watch streams and the Slack bot follow it.
 * (Replicas of the approvals service each tell their own watchers; a watcher on another replica
 * sees the change when it watches again.)
 */
@Injectable()
export class ApprovalFeed {
  private readonly changes = new Subject<VersionedApproval>();
  private readonly draining = new Subject<void>();
  private drained = false;

  publish(change: VersionedApproval): void {
    this.changes.next(change);
  }

  /** Changes as they commit, for as long as the service runs. */
  all(): Observable<VersionedApproval> {
    return this.changes.asObservable();
  }

  /**
   * One request: `current` first, then each newer version, completing after the final one, or
   * when the service drains (the watcher then watches again, on this service restarted or another).
   */
  follow(id: string, current: () => Promise<VersionedApproval>): Observable<VersionedApproval> {
    return new Observable<VersionedApproval>((subscriber) => {
      if (this.drained) {
        subscriber.complete();
        return undefined;
      }
      let seen = -1;
      let early: VersionedApproval[] | undefined = [];
      const emit = (change: VersionedApproval) => {
        if (change.version <= seen) return;
        seen = change.version;
        subscriber.next(change);
        if (isFinal(change.approval)) subscriber.complete();
      };
      // Subscribed before reading the current state, so a change committed in between is not lost.
      const changes = this.changes.subscribe((change) => {
        if (change.approval.id !== id) return;
        if (early) early.push(change);
        else emit(change);
      });
      const drain = this.draining.subscribe(() => subscriber.complete());
      current().then(
        (now) => {
          emit(now);
          for (const change of early ?? []) emit(change);
          early = undefined;
        },
        (error: unknown) => subscriber.error(error),
      );
      return () => {
        changes.unsubscribe();
        drain.unsubscribe();
      };
    });
  }

  /** Ends every follow(): gRPC's graceful shutdown waits for open streams, and a Watch of a pending request would never end. */
  drain(): void {
    this.drained = true;
    this.draining.next();
  }
}
