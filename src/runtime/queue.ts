import { realClock, type Clock } from './clock.js';

export interface WorkQueueOptions {
  clock?: Clock;
  /** First retry delay after a failure; doubles per consecutive failure of the same key. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  onDepthChange?: (depth: number) => void;
  onRetry?: (key: string) => void;
}

/**
 * A work queue of keys, in the manner of client-go's: a key is queued at most once however often
 * it is added; a key is never handed to two workers at once; a key added while it is being
 * processed is queued again when that run is done (so no change is lost). Level-triggered
 * reconciles make this safe: what matters is that the key runs again, not how often it was added.
 */
export class WorkQueue {
  private readonly clock: Clock;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly opts: WorkQueueOptions;
  /** Keys waiting to be handed out, in order. */
  private readonly order: string[] = [];
  /** Keys that need a run: queued, or added again while processing. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; handle: unknown }>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private stopping = false;
  private drained: Array<() => void> = [];
  private busyFrom: number | undefined;

  constructor(opts: WorkQueueOptions = {}) {
    this.opts = opts;
    this.clock = opts.clock ?? realClock;
    this.baseDelayMs = opts.baseDelayMs ?? 500;
    this.maxDelayMs = opts.maxDelayMs ?? 60_000;
  }

  get depth(): number {
    return this.order.length;
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  /**
   * Since when the queue has had work: a key queued, being processed, or failed and waiting to
   * be retried. undefined while idle (keys only waiting for a requeue-after are not work yet).
   */
  get busySince(): number | undefined {
    return this.busyFrom;
  }

  add(key: string): void {
    if (this.stopping || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // queued again by done()
    this.enqueue(key);
    this.trackBusy();
  }

  /** Adds the key after `ms`; of several pending delays for one key the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopping) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) this.clock.clearTimer(pending.handle);
    const handle = this.clock.setTimer(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, handle });
  }

  /** Re-adds a failed key after a capped exponential backoff. */
  addRateLimited(key: string): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.opts.onRetry?.(key);
    this.addAfter(key, this.backoffFor(n));
    this.trackBusy();
  }

  backoffFor(failures: number): number {
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures, 30));
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** A success: the next failure starts from the base delay again. */
  forget(key: string): void {
    this.failures.delete(key);
    this.trackBusy();
  }

  /** Next key to process; undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    if (this.stopping) return Promise.resolve(undefined);
    const key = this.order.shift();
    if (key !== undefined) {
      this.take(key);
      this.opts.onDepthChange?.(this.order.length);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Must be called once for every key get() returned. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.stopping) this.enqueue(key);
    if (this.stopping && this.processing.size === 0) this.fireDrained();
    this.trackBusy();
  }

  /**
   * Stops handing out keys (waiting workers get undefined) and resolves once the keys being
   * processed are done. Queued and delayed keys are dropped: the next controller resyncs them.
   */
  shutdown(): Promise<void> {
    this.stopping = true;
    for (const { handle } of this.delayed.values()) this.clock.clearTimer(handle);
    this.delayed.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(undefined);
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private enqueue(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.take(key);
      waiter(key);
      return;
    }
    this.order.push(key);
    this.opts.onDepthChange?.(this.order.length);
  }

  private take(key: string): void {
    this.dirty.delete(key);
    this.processing.add(key);
  }

  private trackBusy(): void {
    const busy = this.order.length > 0 || this.processing.size > 0 || this.failures.size > 0;
    if (!busy) this.busyFrom = undefined;
    else this.busyFrom ??= this.clock.now();
  }

  private fireDrained(): void {
    const d = this.drained;
    this.drained = [];
    for (const f of d) f();
  }
}
