import { TerminalError, type ReconcileResult, type Reconciler } from '../runtime/handler.js';
import type { EnvironmentReconciler } from '../reconcile/reconciler-environment.js';
import type { GroupReconciler } from '../reconcile/reconciler-group.js';
import { parseQueueKey, type QueueKey } from './keys.js';

const KIND: Record<QueueKey['kind'], string> = { env: 'Environment', group: 'EnvironmentGroup' };

/** berth's queue keys to its reconcilers: `env/<name>` and `group/<name>`. */
export function berthReconciler(r: { envs: EnvironmentReconciler; groups: GroupReconciler }): Reconciler {
  return {
    kindOf: (key) => {
      const k = parseQueueKey(key);
      return k ? KIND[k.kind] : 'unknown';
    },
    reconcile(key): Promise<ReconcileResult> {
      const k = parseQueueKey(key);
      if (!k) return Promise.reject(new TerminalError(`not a berth queue key: "${key}"`));
      return k.kind === 'env' ? r.envs.reconcile(k.name) : r.groups.reconcile(k.name);
    },
  };
}
