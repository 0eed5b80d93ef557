/**
 * A part of the controller that runs until told to stop (controller-runtime's Runnable):
 * `run` resolves once the part has stopped after `signal` aborted.
 */
export interface Runnable {
  name: string;
  run(signal: AbortSignal): Promise<void>;
  /** /readyz while it runs (a controller: once its sources synced); absent means ready. */
  ready?(): boolean;
}

/** Starts every runnable; stop() aborts them all and waits for all to finish. */
export class RunnableGroup {
  private readonly controller = new AbortController();
  private running: Promise<unknown>[] = [];

  constructor(private readonly onFailure: (name: string, err: unknown) => void) {}

  start(r: Runnable): void {
    this.running.push(
      r.run(this.controller.signal).catch((err: unknown) => {
        if (!this.controller.signal.aborted) this.onFailure(r.name, err);
      }),
    );
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await Promise.all(this.running);
  }
}
