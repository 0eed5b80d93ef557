import type { Logger } from 'pino';
import type { Enqueue, Source } from '../runtime/source.js';
import type { SwarmCache } from '../swarm/cache.js';
import { envKey } from './keys.js';

/**
 * The Swarm cache as a source: it runs the cache (first list, then Docker's events) and turns
 * each change the cache announces into keys. A change of a service, task or container enqueues
 * its environment, and so does a node's claim label moving (the environments that lost and took
 * it); any other node change enqueues every key (any environment may hold or want that node),
 * and so does a relist after the event stream reconnected (events may have been missed).
 * Synced once the cache holds its first full list.
 */
export function swarmCacheSource(o: { cache: SwarmCache; listKeys: () => Promise<string[]>; log: Logger }): Source {
  return {
    name: 'swarm-cache',
    async run(queue, signal, synced) {
      const unsubscribe = o.cache.subscribe((c) => {
        if (c.env) queue.add(envKey(c.env));
        else if (c.type === 'node' || c.type === 'relist') addAll(queue, o.listKeys, o.log);
      });
      void o.cache.waitForSync().then(synced);
      try {
        await o.cache.run(signal);
      } finally {
        unsubscribe();
      }
    },
  };
}

function addAll(queue: Enqueue, listKeys: () => Promise<string[]>, log: Logger): void {
  listKeys().then(
    (keys) => keys.forEach((k) => queue.add(k)),
    (err: unknown) => log.warn({ err: (err as Error).message }, 'listing keys after a Swarm change failed'),
  );
}
