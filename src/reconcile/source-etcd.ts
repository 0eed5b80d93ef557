import type { Logger } from 'pino';
import type { Environment } from '../api/environment.js';
import type { EtcdClient } from '../store/client.js';
import { watchResources } from '../store/watch.js';
import { envKey, groupKey } from './keys.js';
import type { Enqueue } from './sources.js';

/**
 * etcd watch → keys. An environment event enqueues that environment; a group event enqueues
 * the group and every environment in it (their pool or spare changed). The first relist marks
 * the source synced.
 */
export async function runEtcdSource(
  client: EtcdClient,
  signal: AbortSignal,
  queue: Enqueue,
  log: Logger,
  hooks: { onSynced: () => void; onRestart: () => void },
): Promise<void> {
  const envGroup = new Map<string, string>();
  const envsOf = (group: string) => [...envGroup].filter(([, g]) => g === group).map(([e]) => e);
  const watch = watchResources(client, 'all', undefined, {
    onRestart: (reason, err) => {
      hooks.onRestart();
      log.warn({ reason, err: err.message }, 'etcd watch restarted');
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
        hooks.onSynced();
      } else if (ev.kind === 'Environment') {
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
}
