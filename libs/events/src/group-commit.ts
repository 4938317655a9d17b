interface PendingWrite<TItem, TResult> {
  readonly items: readonly TItem[];
  resolve(results: TResult[]): void;
  reject(error: unknown): void;
}

/**
 * Group commit: while one write to the log is in flight, every append that arrives waits and
 * then goes out together in the next write. One caller alone pays one round trip; a thousand
 * concurrent callers pay a handful, and each is answered only when its own records are
 * acknowledged.
 */
export class GroupCommitter<TItem, TResult> {
  private queue: PendingWrite<TItem, TResult>[] = [];
  private inFlight: Promise<void> | undefined;
  private writes = 0;

  constructor(
    private readonly write: (items: TItem[]) => Promise<TResult[]>,
    private readonly maxItemsPerWrite = 5000,
  ) {}

  /** How many writes have reached the log: fewer than appends when grouping works. */
  get writeCount(): number {
    return this.writes;
  }

  submit(items: readonly TItem[]): Promise<TResult[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise<TResult[]>((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      if (!this.inFlight) this.inFlight = this.pump();
    });
  }

  /** Resolves when everything submitted so far has been written or has failed. */
  async drain(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  private async pump(): Promise<void> {
    // Yield once so appends made in the same tick join the first write too.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const batch = this.takeBatch();
      const items = batch.flatMap((p) => p.items);
      this.writes += 1;
      try {
        const results = await this.write(items);
        if (results.length !== items.length) {
          // Slicing a short answer would hand some callers too few results, silently.
          throw new Error(`the group commit write returned ${results.length} results for ${items.length} records; every record needs its own answer`);
        }
        let offset = 0;
        for (const pending of batch) {
          pending.resolve(results.slice(offset, offset + pending.items.length));
          offset += pending.items.length;
        }
      } catch (error) {
        for (const pending of batch) pending.reject(error);
      }
    }
    this.inFlight = undefined;
  }

  private takeBatch(): PendingWrite<TItem, TResult>[] {
    const batch: PendingWrite<TItem, TResult>[] = [];
    let count = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (batch.length > 0 && count + next.items.length > this.maxItemsPerWrite) break;
      batch.push(next);
      count += next.items.length;
      this.queue.shift();
    }
    return batch;
  }
}
