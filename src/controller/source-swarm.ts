import type { Logger } from 'pino';
import type { SwarmApi, SwarmEvent } from '../swarm/api.js';
import { LABEL_ENV } from '../swarm/labels.js';
import type { Enqueue, Source } from '../runtime/source.js';
import { envKey } from './keys.js';

/**
 * The environment a Swarm event concerns. Service events carry only the service name
 * (`<env>_<service>[_<color>]`; env names have no `_`), container events carry the container
 * labels berth sets. Node events concern every environment: undefined here.
 */
export function envOfEvent(e: SwarmEvent): string | undefined {
  if (e.type === 'container') return e.attributes[LABEL_ENV];
  if (e.type === 'service' || e.type === 'task') {
    const name = e.attributes.name ?? '';
    const env = name.split('_')[0];
    return name.includes('_') && env ? env : undefined;
  }
  return undefined;
}

/**
 * Docker events → keys: a service, task or container event enqueues its environment; a node
 * event enqueues every key (any environment may hold or want that node). After a reconnect
 * events may have been missed, so everything is listed again. An event stream has no first
 * list, so the source is synced as soon as it runs; the resync source lists.
 */
export function swarmEventsSource(o: { swarm: SwarmApi; listKeys: () => Promise<string[]>; log: Logger }): Source {
  return {
    name: 'swarm-events',
    async run(queue, signal, synced) {
      const everything = () => addAll(queue, o.listKeys, o.log);
      synced();
      await o.swarm.watchEvents(
        (e) => {
          if (e.type === 'node') return everything();
          const env = envOfEvent(e);
          if (env) queue.add(envKey(env));
        },
        signal,
        () => {
          o.log.info('docker event stream reconnected: resyncing');
          everything();
        },
      );
    },
  };
}

function addAll(queue: Enqueue, listKeys: () => Promise<string[]>, log: Logger): void {
  listKeys().then(
    (keys) => keys.forEach((k) => queue.add(k)),
    (err: unknown) => log.warn({ err: (err as Error).message }, 'listing keys after a Swarm event failed'),
  );
}
