import type { Clock } from './clock.js';

/**
 * A part of the controller that runs until told to stop (controller-runtime's Runnable):
 * `run` resolves once the part has stopped after `signal` aborted. `abandon` aborts when what
 * is still in flight must be dropped at once (leadership lost, or the drain timed out).
 */
export interface Runnable {
  name: string;
  run(signal: AbortSignal, abandon?: AbortSignal): Promise<void>;
  /** /readyz while it runs (a controller: once its sources synced); absent means ready. */
  ready?(): boolean;
  /** /healthz while it runs: why it is stalled, or undefined while it progresses. */
  stalled?(): string | undefined;
}

/** Starts every runnable; stop() aborts them all and waits for all to finish. */
export class RunnableGroup {
  private readonly controller = new AbortController();
  private readonly abandoning = new AbortController();
  private running: Promise<unknown>[] = [];

  constructor(private readonly onFailure: (name: string, err: unknown) => void) {}

  start(r: Runnable): void {
    this.running.push(
      r.run(this.controller.signal, this.abandoning.signal).catch((err: unknown) => {
        if (!this.controller.signal.aborted) this.onFailure(r.name, err);
      }),
    );
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Stops every runnable and waits for all. With `abandon`, what is still in flight after
   * `afterMs` (0: at once) is abandoned with `reason`; without, the wait has no bound.
   */
  async stop(abandon?: { afterMs: number; clock: Clock; reason: Error }): Promise<void> {
    this.controller.abort();
    if (!abandon) {
      await Promise.all(this.running);
      return;
    }
    const drop = () => this.abandoning.abort(abandon.reason);
    if (abandon.afterMs <= 0) drop();
    const timer = abandon.afterMs > 0 ? abandon.clock.setTimer(drop, abandon.afterMs) : undefined;
    try {
      await Promise.all(this.running);
    } finally {
      if (timer !== undefined) abandon.clock.clearTimer(timer);
    }
  }
}
