/**
 * A one-line progress report for long-running commands (`audit rebuild`, `sessions replay`): how
 * many items are done, the rate, and the time left when the total is known. It is drawn on stderr
 * only when stdout is a terminal, so a piped or redirected run prints nothing but its output.
 */
export class ProgressLine {
  private readonly started = performance.now();
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drawn = false;
  private done = 0;

  constructor(
    private readonly unit: string,
    private total: number | undefined,
    private readonly out: { isTTY?: boolean; write(text: string): unknown } = process.stderr,
    readonly enabled: boolean = process.stdout.isTTY === true && process.stderr.isTTY === true,
  ) {}

  setTotal(total: number | undefined): void {
    this.total = total;
  }

  /** Records progress; redraws at most ten times a second. */
  update(done: number): void {
    this.done = done;
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.draw();
  }

  /** Wipes the line, so ordinary output can be written; the next update draws it again. */
  clear(): void {
    if (!this.enabled || !this.drawn) return;
    this.out.write('\r\x1b[2K');
    this.drawn = false;
  }

  finish(): void {
    this.clear();
  }

  /** What the line says, e.g. `1,200/5,000 events  2,400/s  about 2s left`. */
  text(now = performance.now()): string {
    return describeProgress(this.done, this.total, (now - this.started) / 1000, this.unit);
  }

  private draw(): void {
    this.out.write(`\r\x1b[2K${this.text()}`);
    this.drawn = true;
  }
}

export function describeProgress(done: number, total: number | undefined, elapsedSeconds: number, unit: string): string {
  const count = total === undefined ? `${done.toLocaleString('en')} ${unit}` : `${done.toLocaleString('en')}/${total.toLocaleString('en')} ${unit}`;
  const rate = elapsedSeconds > 0 ? done / elapsedSeconds : 0;
  const parts = [count, `${Math.round(rate).toLocaleString('en')}/s`];
  if (total !== undefined && rate > 0 && done < total) parts.push(`about ${formatSeconds((total - done) / rate)} left`);
  return parts.join('  ');
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}
