import type { Logger } from 'pino';
import type { Source } from '../runtime/source.js';
import type { EtcdClient } from '../store/client.js';
import { etcdRange } from '../store/etcd-range.js';
import { envOfJobRequestKey, jobRequestsPrefix } from '../store/job-requests.js';
import { listWatch } from '../store/listwatch.js';
import { envKey } from './keys.js';

/** Opens a watch of the `berth run` request keys; `onRequest` gets the environment of each one written. */
export type JobRequestWatch = (onRequest: (env: string) => void) => { close(): Promise<void> };

/** The production watch: list + watch of `<prefix>/job-requests/` (the same loop as the resource watch). */
export function etcdJobRequestWatch(client: EtcdClient, log: Logger): JobRequestWatch {
  return (onRequest) =>
    listWatch<string>(etcdRange(client), {
      prefix: jobRequestsPrefix(client.prefix),
      decoder: { owns: (key) => envOfJobRequestKey(client.prefix, key) !== undefined, decode: (_key, value) => value },
      deliver: (d) => {
        for (const c of d.changes) if (c.type === 'put') onRequest(envOfJobRequestKey(client.prefix, c.key)!);
      },
      onRestart: (reason, err) => log.warn({ reason, err: err.message }, 'job request watch restarted'),
    });
}

/**
 * `berth run` requests → keys: a request enqueues its environment, whose reconcile starts the
 * run and deletes the request. Without it a request would wait for the job's next tick.
 */
export function jobRequestSource(watch: JobRequestWatch): Source {
  return {
    name: 'job-requests',
    async run(queue, signal, synced) {
      const w = watch((env) => queue.add(envKey(env)));
      synced();
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await w.close();
    },
  };
}
