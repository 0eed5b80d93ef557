import type { WorkQueue } from './queue.js';

/**
 * Runs `count` workers that take keys until the queue shuts down. `handle` decides what the
 * queue does with the key (see reconcileHandler) and must not throw; the worker marks it done.
 */
export async function runWorkers(queue: WorkQueue, count: number, handle: (key: string) => Promise<unknown>): Promise<void> {
  const worker = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await handle(key);
      } finally {
        queue.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: count }, worker));
}
