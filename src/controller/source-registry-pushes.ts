import type { Logger } from 'pino';
import type { Environment } from '../api/index.js';
import { pushKey, pushKeyOf, type PushedTags } from '../registry/notifications.js';
import type { ResourceReader } from '../reconcile/ports.js';
import type { Source } from '../runtime/source.js';
import type { EtcdClient } from '../store/client.js';
import { etcdRange } from '../store/etcd-range.js';
import { listWatch } from '../store/listwatch.js';
import { pushOfKey, registryPushesPrefix, registryPushSchema, type RegistryPush } from '../store/registry-pushes.js';
import { envKey } from './keys.js';

/** One delivery of the push keys: those written (or listed), and the `repository:tag` of those gone. */
export type RegistryPushWatch = (on: (written: RegistryPush[], gone: string[]) => void) => { close(): Promise<void> };

/** The production watch: list + watch of `<prefix>/registry-pushes/`; a value that does not parse is left out. */
export function etcdRegistryPushWatch(client: EtcdClient, log: Logger): RegistryPushWatch {
  return (on) =>
    listWatch<RegistryPush>(etcdRange(client), {
      prefix: registryPushesPrefix(client.prefix),
      decoder: { owns: (key) => pushOfKey(client.prefix, key) !== undefined, decode: (_key, value) => registryPushSchema.parse(JSON.parse(value)) },
      deliver: (d) => {
        const written = d.changes.flatMap((c) => (c.type === 'put' ? [c.object] : []));
        const gone = d.changes.flatMap((c) => (c.type === 'delete' ? [pushOfKey(client.prefix, c.key)!] : []));
        on(written, gone);
      },
      onRestart: (reason, err) => log.warn({ reason, err: err.message }, 'registry push watch restarted'),
    });
}

/** The `repository:tag` of every tracked image of the environment (services and jobs). */
export function trackedPushKeys(env: Environment): string[] {
  return [...Object.values(env.spec.services), ...Object.values(env.spec.jobs)].flatMap((s) => {
    const key = s.track ? pushKeyOf(s.image) : undefined;
    return key ? [key] : [];
  });
}

/**
 * Registry notifications → keys: each pushed tag is recorded in `pushed` (which the environment
 * reconciles consult), and every environment that tracks an image of that repository and tag
 * is enqueued, to resolve it again now rather than at the end of its `track` period.
 */
export function registryPushSource(watch: RegistryPushWatch, pushed: PushedTags, envs: Pick<ResourceReader, 'listEnvironments'>, log: Logger): Source {
  return {
    name: 'registry-pushes',
    async run(queue, signal, synced) {
      let work = Promise.resolve();
      const w = watch((written, gone) => {
        for (const key of gone) pushed.forget(key);
        if (written.length === 0) return;
        for (const p of written) pushed.record(p);
        const keys = new Set(written.map((p) => pushKey(p.repository, p.tag)));
        // One list per delivery, in order; a failed list is logged: polling stays the fallback.
        work = work.then(async () => {
          try {
            for (const env of await envs.listEnvironments()) {
              if (trackedPushKeys(env).some((k) => keys.has(k))) {
                log.info({ key: envKey(env.metadata.name), pushed: [...keys] }, 'tracked tag pushed: resolving again');
                queue.add(envKey(env.metadata.name));
              }
            }
          } catch (err) {
            log.warn({ err: (err as Error).message }, 'tracked tag pushed, but the environments could not be listed: left to the track period');
          }
        });
      });
      synced();
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await w.close();
      await work;
    },
  };
}
