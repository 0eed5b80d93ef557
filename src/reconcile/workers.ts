import type { WorkQueue } from './queue.js';

/** What a reconcile asks of the queue when it returns normally. */
export interface ReconcileResult {
  /** Run the key again after this long (polling a convergence, or a terminal error re-checked slowly). */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

/**
 * Runs `count` workers that take keys until the queue shuts down. A thrown error re-queues the
 * key with backoff; a normal return resets the key's backoff.
 */
export async function runWorkers(
  queue: WorkQueue,
  count: number,
  reconcile: Reconcile,
  onError: (key: string, err: unknown) => void = () => {},
): Promise<void> {
  const worker = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        const result = await reconcile(key);
        queue.forget(key);
        if (result?.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        onError(key, err);
        queue.addRateLimited(key);
      } finally {
        queue.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: count }, worker));
}
