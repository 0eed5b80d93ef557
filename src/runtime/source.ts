import type { Logger } from 'pino';
import { sleep, type Clock } from './clock.js';

/** Where keys go; the queue dedupes, so over-enqueueing is cheap and safe. */
export interface Enqueue {
  add(key: string): void;
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
          for (const k of await o.list()) queue.add(k);
          synced();
        } catch (err) {
          o.log.warn({ source: o.name, err: (err as Error).message }, 'listing keys failed');
        }
        await sleep(o.clock, o.intervalMs, signal);
      }
    },
  };
}
