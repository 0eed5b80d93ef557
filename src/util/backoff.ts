/**
 * The reconnect delay of a long-lived stream: starts at `firstMs`, doubles on each failed attempt
 * up to `maxMs`, and starts over once a connection succeeds.
 */
export class Backoff {
  private current: number;

  constructor(
    private readonly firstMs: number,
    private readonly maxMs: number,
  ) {
    this.current = firstMs;
  }

  /** The delay to wait now; the one after it is twice as long (capped). */
  next(): number {
    const delay = this.current;
    this.current = Math.min(delay * 2, this.maxMs);
    return delay;
  }

  reset(): void {
    this.current = this.firstMs;
  }
}
