import type { Logger } from 'pino';
import type { Source } from '../runtime/source.js';
import type { EtcdClient } from '../store/client.js';
import { etcdRange } from '../store/etcd-range.js';
import { envOfJobRequestKey, jobRequestsPrefix } from '../store/job-requests.js';
import { envOfReleaseRequestKey, releaseRequestsPrefix } from '../store/release-requests.js';
import { listWatch } from '../store/listwatch.js';
import { envKey } from './keys.js';

/** Opens a watch of CLI request keys (`berth run`, `berth approve`, `berth rollback`); `onRequest` gets the environment of each one written. */
export type RequestWatch = (onRequest: (env: string) => void) => { close(): Promise<void> };
export type JobRequestWatch = RequestWatch;

/** The production watch of one kind of request key: list + watch of its prefix (the same loop as the resource watch). */
function etcdRequestWatch(client: EtcdClient, log: Logger, what: string, prefix: string, envOf: (key: string) => string | undefined): RequestWatch {
  return (onRequest) =>
    listWatch<string>(etcdRange(client), {
      prefix,
      decoder: { owns: (key) => envOf(key) !== undefined, decode: (_key, value) => value },
      deliver: (d) => {
        for (const c of d.changes) if (c.type === 'put') onRequest(envOf(c.key)!);
      },
      onRestart: (reason, err) => log.warn({ reason, err: err.message }, `${what} watch restarted`),
    });
}

/** `<prefix>/job-requests/`: `berth run`. */
export function etcdJobRequestWatch(client: EtcdClient, log: Logger): RequestWatch {
  return etcdRequestWatch(client, log, 'job request', jobRequestsPrefix(client.prefix), (key) => envOfJobRequestKey(client.prefix, key));
}

/** `<prefix>/releases/`: `berth approve` and `berth rollback`. */
export function etcdReleaseRequestWatch(client: EtcdClient, log: Logger): RequestWatch {
  return etcdRequestWatch(client, log, 'release request', releaseRequestsPrefix(client.prefix), (key) => envOfReleaseRequestKey(client.prefix, key));
}

/**
 * CLI requests → keys: a request enqueues its environment, whose reconcile acts on it. Without
 * it a request would wait for the next pass over the environment (a job's next tick, a resync).
 */
export function requestSource(name: string, watch: RequestWatch): Source {
  return {
    name,
    async run(queue, signal, synced) {
      const w = watch((env) => queue.add(envKey(env)));
      synced();
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await w.close();
    },
  };
}

export function jobRequestSource(watch: RequestWatch): Source {
  return requestSource('job-requests', watch);
}
