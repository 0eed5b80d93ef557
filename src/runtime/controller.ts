import type { Logger } from 'pino';
import type { BerthMetrics } from '../metrics/registry.js';
import { realClock, type Clock } from './clock.js';
import { reconcileHandler, type HandlerDeps, type Reconciler } from './handler.js';
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
}

export const DEFAULT_RECONCILE_TIMEOUT_MS = 120_000;

/**
 * Sources feed one work queue; workers take its keys through reconcileHandler. Runs until its
 * signal aborts: then the workers take no new key at once, running reconciles finish, and the
 * sources stop. A source that fails fails the controller (and so the manager).
 */
export class Controller implements Runnable {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly handler: HandlerDeps;
  private readonly synced = new Set<string>();

  constructor(private readonly o: ControllerOptions) {
    this.name = o.name;
    const clock = o.clock ?? realClock;
    this.queue = new WorkQueue({
      clock,
      onDepthChange: (d) => o.metrics.workqueueDepth.set(d),
      onRetry: () => o.metrics.workqueueRetries.inc(),
    });
    this.handler = {
      queue: this.queue,
      reconciler: o.reconciler,
      clock,
      timeoutMs: o.reconcileTimeoutMs ?? DEFAULT_RECONCILE_TIMEOUT_MS,
      metrics: o.metrics,
      log: o.log,
    };
  }

  /** Every source has delivered its first full view. */
  ready(): boolean {
    return this.o.sources.every((s) => this.synced.has(s.name));
  }

  async run(signal: AbortSignal): Promise<void> {
    const stop = new AbortController();
    const drained = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => void this.queue.shutdown().then(resolve), { once: true }));
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) stop.abort();

    let failure: unknown;
    const sources = this.o.sources.map((s) =>
      s.run(this.queue, stop.signal, () => this.synced.add(s.name)).catch((err: unknown) => {
        if (stop.signal.aborted) return;
        this.o.log.error({ controller: this.name, source: s.name, err: (err as Error).message }, 'source failed');
        failure = err;
        stop.abort();
      }),
    );
    const workers = runWorkers(this.queue, this.o.workers, (key) => reconcileHandler(this.handler, key));
    await drained;
    await Promise.all([workers, ...sources]);
    signal.removeEventListener('abort', onAbort);
    if (failure) throw failure;
  }
}
