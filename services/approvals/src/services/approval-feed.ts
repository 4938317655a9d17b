import { Injectable } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import { isFinal } from '../domain/approval.js';
import type { VersionedApproval } from '../repositories/approval.repository.js';

/**
 * Every committed change to a request: Watch streams follow the changes made by any replica, the
 * Slack bot only those made here (one replica posts each message).
 */
@Injectable()
export class ApprovalFeed {
  private readonly changes = new Subject<VersionedApproval>();
  private readonly changesHere = new Subject<VersionedApproval>();
  private readonly draining = new Subject<void>();
  private drained = false;

  /** A change this replica committed. */
  publish(change: VersionedApproval): void {
    this.changesHere.next(change);
    this.changes.next(change);
  }

  /** A change heard from the database: made by another replica (or by this one, heard twice; followers skip versions they have seen). */
  publishHeard(change: VersionedApproval): void {
    this.changes.next(change);
  }

  /** Changes this replica commits, for as long as the service runs. */
  all(): Observable<VersionedApproval> {
    return this.changesHere.asObservable();
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
