import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';
import { sleep, type Clock } from '../runtime/clock.js';
import type { Runnable } from '../runtime/runnable.js';

export interface HeapTrimOptions {
  /** Since when the controller has had work (its queue's busySince); undefined while idle. */
  busySince: () => number | undefined;
  clock: Clock;
  log: Logger;
  /** Collects garbage at once, with compaction (injected for tests). */
  collect?: () => void;
  /** How long the controller must have been idle after work before the heap is trimmed. */
  idleMs?: number;
  /** At most one trim per this period. */
  minIntervalMs?: number;
  /** How often the queue is looked at. */
  pollMs?: number;
}

/**
 * Gives memory back after a burst of work. A cold start of a thousand environments grows V8's
 * heap to several times what stays alive; once the controller is at rest it allocates almost
 * nothing, so no full collection comes and the heap keeps its size for hours (about 300 MiB of
 * RSS at 1,000 environments, of which some 60 MB live). Once the queue has been idle for
 * `idleMs` after work, one full collection returns the rest; never more than once per
 * `minIntervalMs`, and it costs a few tens of milliseconds at rest.
 */
export function heapTrimmer(o: HeapTrimOptions): Runnable {
  const idleMs = o.idleMs ?? 2_000;
  const minIntervalMs = o.minIntervalMs ?? 60_000;
  const pollMs = o.pollMs ?? 1_000;
  return {
    name: 'heap-trim',
    async run(signal) {
      const collect = o.collect ?? fullCollection();
      let worked = false;
      let idleFrom: number | undefined;
      let lastTrim = -Infinity;
      while (!signal.aborted) {
        await sleep(o.clock, pollMs, signal);
        const now = o.clock.now();
        if (o.busySince() !== undefined) {
          worked = true;
          idleFrom = undefined;
          continue;
        }
        idleFrom ??= now;
        if (!worked || now - idleFrom < idleMs || now - lastTrim < minIntervalMs) continue;
        const before = process.memoryUsage().heapTotal;
        collect();
        worked = false;
        lastTrim = now;
        o.log.info({ heapTotalBefore: before, heapTotalAfter: process.memoryUsage().heapTotal }, 'heap trimmed after work');
      }
    },
  };
}

/**
 * A full collection that compacts every page, so that the pages the burst's garbage spread over
 * are given back (a plain full collection leaves most of them: live objects are scattered). Node
 * exposes collections only under --expose-gc, and V8 compacts every page only under
 * --compact-on-every-full-gc: both are set for this call alone.
 */
function fullCollection(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}
