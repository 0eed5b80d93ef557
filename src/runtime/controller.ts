import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { BerthMetrics } from '../metrics/registry.js';
import { realClock, type Clock } from './clock.js';
import { reconcileHandler, type HandlerDeps, type Reconciler } from './handler.js';
import { DEFAULT_STALL_TIMEOUT_MS, ProgressMonitor } from './progress.js';
import { WorkQueue } from './queue.js';
import type { Runnable } from './runnable.js';
import type { Source } from './source.js';
import { runWorkers } from './workers.js';

export interface ControllerOptions {
  name: string;
  sources: Source[];
  reconciler: Reconciler;
  workers: number;
  log: Logger;
  metrics: Pick<BerthMetrics, 'reconcilesTotal' | 'reconcileDuration' | 'workqueueDepth' | 'workqueueRetries'>;
  clock?: Clock;
  /** A reconcile's signal aborts after this long and the key is retried with backoff. */
  reconcileTimeoutMs?: number;
  /** /healthz fails when the loop has had work this long without a reconcile succeeding. */
  stallTimeoutMs?: number;
}

export const DEFAULT_RECONCILE_TIMEOUT_MS = 120_000;

/**
 * Sources feed one work queue; workers take its keys through reconcileHandler. Runs until its
 * signal aborts: then the workers take no new key at once, running reconciles finish (or are
 * abandoned when `abandon` aborts), and the sources stop. A source that fails fails the
 * controller (and so the manager). Each run (each term of leadership) starts from a fresh
 * queue and fresh sources: what the last leader knew is listed again.
 */
export class Controller implements Runnable {
  readonly name: string;
  private readonly clock: Clock;
  private current: { queue: WorkQueue; synced: Set<string>; progress: ProgressMonitor } | undefined;

  constructor(private readonly o: ControllerOptions) {
    this.name = o.name;
    this.clock = o.clock ?? realClock;
  }

  /** The queue of the running term (a test may feed it directly). */
  get queue(): WorkQueue {
    if (!this.current) throw new Error(`controller ${this.name} is not running`);
    return this.current.queue;
  }

  /** Since when the running term's queue has had work; undefined while idle or not running. */
  busySince(): number | undefined {
    return this.current?.queue.busySince;
  }

  /** Every source has delivered its first full view. */
  ready(): boolean {
    const synced = this.current?.synced;
    return this.o.sources.every((s) => synced?.has(s.name));
  }

  stalled(): string | undefined {
    return this.current?.progress.stalled();
  }

  async run(signal: AbortSignal, abandon?: AbortSignal): Promise<void> {
    const { o, clock } = this;
    const queue = new WorkQueue({
      clock,
      onDepthChange: (d) => o.metrics.workqueueDepth.set(d),
      onRetry: () => o.metrics.workqueueRetries.inc(),
    });
    const synced = new Set<string>();
    const progress = new ProgressMonitor(clock, o.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS, () => queue.busySince);
    this.current = { queue, synced, progress };
    const handler: HandlerDeps = {
      queue,
      reconciler: o.reconciler,
      clock,
      timeoutMs: o.reconcileTimeoutMs ?? DEFAULT_RECONCILE_TIMEOUT_MS,
      metrics: o.metrics,
      log: o.log,
      ...(abandon ? { abandon: this.forEachReconcile(abandon, o.workers) } : {}),
    };

    const stop = new AbortController();
    const drained = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => void queue.shutdown().then(resolve), { once: true }));
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) stop.abort();

    let failure: unknown;
    const sources = o.sources.map((s) =>
      s.run(queue, stop.signal, () => synced.add(s.name)).catch((err: unknown) => {
        if (stop.signal.aborted) return;
        o.log.error({ controller: this.name, source: s.name, err: (err as Error).message }, 'source failed');
        failure = err;
        stop.abort();
      }),
    );
    const workers = runWorkers(queue, o.workers, async (key) => {
      if ((await reconcileHandler(handler, key)) !== 'error') progress.succeeded();
    });
    await drained;
    await Promise.all([workers, ...sources]);
    signal.removeEventListener('abort', onAbort);
    o.metrics.workqueueDepth.set(0);
    if (failure) throw failure;
  }

  /**
   * `abandon` again, for this controller's reconciles: each running one listens on it, so up to
   * `workers` listeners at once, where Node warns of a leak past ten (`MaxListenersExceededWarning`
   * with 16 workers). The shared signal gets one listener per controller, not one per reconcile.
   */
  private forEachReconcile(abandon: AbortSignal, workers: number): AbortSignal {
    const own = new AbortController();
    setMaxListeners(workers + 1, own.signal);
    if (abandon.aborted) own.abort(abandon.reason);
    else abandon.addEventListener('abort', () => own.abort(abandon.reason), { once: true });
    return own.signal;
  }
}
