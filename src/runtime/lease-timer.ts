import type { Clock } from './clock.js';

/**
 * How long this process knows its lease to be held, from its own side of the wire: etcd
 * extends a lease when a keepalive arrives, which is after the client sent it, so
 * "sent + TTL" never overestimates. A keepalive's answer dates from the oldest one not yet
 * answered (answers may be late or lost: the estimate errs short, never long).
 */
export class LeaseTimer {
  private validUntil = Number.NEGATIVE_INFINITY;
  private unanswered: number | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  /** The grant was requested at `requestedAt` and answered. */
  granted(requestedAt: number): void {
    this.validUntil = requestedAt + this.ttlMs;
  }

  keepaliveSent(): void {
    this.unanswered ??= this.clock.now();
  }

  /** etcd answered a keepalive and reset the lease to `ttlMs`. */
  keepaliveAnswered(ttlMs = this.ttlMs): void {
    if (this.unanswered === undefined) return;
    this.validUntil = Math.max(this.validUntil, this.unanswered + ttlMs);
    this.unanswered = undefined;
  }

  /** Milliseconds the lease is still known to be held (0 or less: not known any more). */
  remainingMs(): number {
    return this.validUntil - this.clock.now();
  }
}
