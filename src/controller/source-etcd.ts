import type { Logger } from 'pino';
import type { Environment } from '../api/environment.js';
import type { ResourceWatch, WatchOptions } from '../store/watch.js';
import type { Source } from '../runtime/source.js';
import { envKey, groupKey } from './keys.js';
import type { ResourceInformer } from './resource-informer.js';

export interface EtcdSourceOptions {
  /** Opens the watch of every group and environment (watchResources(client, 'all', …) in production). */
  watch: (opts: WatchOptions) => ResourceWatch;
  log: Logger;
  onRestart: () => void;
  /** Fed with what the watch delivers, before the keys are enqueued: the reconcilers read it instead of etcd. */
  informer?: ResourceInformer;
}

/**
 * etcd watch → keys. An environment event enqueues that environment; a group event enqueues
 * the group and every environment in it (their pool or spare changed). The first relist marks
 * the source synced. Each event reaches the informer before its keys are enqueued.
 */
export function etcdSource(o: EtcdSourceOptions): Source {
  return {
    name: 'etcd',
    async run(queue, signal, synced) {
      const informer = o.informer;
      informer?.reset();
      const envGroup = new Map<string, string>();
      const envsOf = (group: string) => [...envGroup].filter(([, g]) => g === group).map(([e]) => e);
      const watch = o.watch({
        onRestart: (reason, err) => {
          o.onRestart();
          o.log.warn({ reason, err: err.message }, 'etcd watch restarted');
        },
        onInvalid: (key) => {
          // The environment's own reconcile reports the invalid spec in its status.
          const name = key.split('/').pop();
          if (name && key.includes('/environments/')) queue.add(envKey(name));
        },
      });
      signal.addEventListener('abort', () => void watch.close(), { once: true });
      try {
        for await (const ev of watch) {
          if (ev.type === 'relist') {
            informer?.replace(ev.items);
            const before = new Set(envGroup.keys());
            for (const r of ev.items) {
              if (r.kind === 'Environment') {
                envGroup.set(r.metadata.name, (r as Environment).spec.group);
                before.delete(r.metadata.name);
                queue.add(envKey(r.metadata.name));
              } else queue.add(groupKey(r.metadata.name));
            }
            for (const gone of before) {
              envGroup.delete(gone);
              queue.add(envKey(gone));
            }
            synced();
            continue;
          }
          if (ev.type === 'put') informer?.put(ev.resource);
          else informer?.delete(ev.kind, ev.name);
          if (ev.kind === 'Environment') {
            if (ev.type === 'put') envGroup.set(ev.name, (ev.resource as Environment).spec.group);
            else envGroup.delete(ev.name);
            queue.add(envKey(ev.name));
          } else {
            queue.add(groupKey(ev.name));
            for (const e of envsOf(ev.name)) queue.add(envKey(e));
          }
        }
      } finally {
        await watch.close();
      }
    },
  };
}
