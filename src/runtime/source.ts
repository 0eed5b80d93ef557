import type { Logger } from 'pino';
import { sleep, type Clock } from './clock.js';

/** Where keys go; the queue dedupes, so over-enqueueing is cheap and safe. */
export interface Enqueue {
  add(key: string): void;
  /** Adds `key` once `ms` have passed (at once when `ms` ≤ 0). */
  addAfter(key: string, ms: number): void;
}

/**
 * Events in, keys out (controller-runtime's source.Source plus its event handler): runs until
 * `signal` aborts, adding to `queue` the key of everything its events concern. It calls
 * `synced` once it has delivered a full view (its first list); the controller is ready when
 * every source has. A rejection while `signal` is live fails the controller.
 */
export interface Source {
  name: string;
  run(queue: Enqueue, signal: AbortSignal, synced: () => void): Promise<void>;
}

export interface PeriodicSourceOptions {
  name: string;
  intervalMs: number;
  clock: Clock;
  list: () => Promise<string[]>;
  log: Logger;
  /**
   * Each key is added at a random moment within this many ms of the list instead of all at
   * once, so a resync of many keys does not arrive as one burst (client-go's jittered resync).
   */
  spreadMs?: number;
  /** Injected for tests: a number in [0, 1). */
  random?: () => number;
}

/**
 * Every key `list` returns, now and every `intervalMs`: the resync under the watches, for
 * missed events and for changes that raise none. A failed list waits for the next round.
 */
export function periodicSource(o: PeriodicSourceOptions): Source {
  return {
    name: o.name,
    async run(queue, signal, synced) {
      while (!signal.aborted) {
        try {
          const keys = await o.list();
          const spread = o.spreadMs ?? 0;
          for (const k of keys) queue.addAfter(k, spread > 0 ? Math.floor((o.random ?? Math.random)() * spread) : 0);
          synced();
        } catch (err) {
          o.log.warn({ source: o.name, err: (err as Error).message }, 'listing keys failed');
        }
        await sleep(o.clock, o.intervalMs, signal);
      }
    },
  };
}
