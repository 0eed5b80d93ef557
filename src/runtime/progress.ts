import type { Clock } from './clock.js';

export const DEFAULT_STALL_TIMEOUT_MS = 180_000;

/**
 * Whether a work loop is making progress, for /healthz. Progress is a reconcile that ended
 * without error (success, requeue-after, terminal), or having no work at all: an idle
 * controller is healthy however long it idles. A loop that has had work for longer than
 * `stallTimeoutMs` without one reconcile succeeding (calls hanging on a paused dockerd, every
 * reconcile failing) is stalled, and a supervisor should restart it.
 */
export class ProgressMonitor {
  private lastSuccess: number;

  constructor(
    private readonly clock: Clock,
    private readonly stallTimeoutMs: number,
    /** Since when the loop has had work; undefined while idle (WorkQueue.busySince). */
    private readonly busySince: () => number | undefined,
  ) {
    this.lastSuccess = clock.now();
  }

  succeeded(): void {
    this.lastSuccess = this.clock.now();
  }

  /** Why the loop is stalled, or undefined while it progresses. */
  stalled(): string | undefined {
    const busy = this.busySince();
    if (busy === undefined) return undefined;
    const quietMs = this.clock.now() - Math.max(busy, this.lastSuccess);
    if (quietMs <= this.stallTimeoutMs) return undefined;
    return `no reconcile succeeded for ${Math.round(quietMs / 1000)} s while work is pending (stall timeout ${Math.round(this.stallTimeoutMs / 1000)} s)`;
  }
}
