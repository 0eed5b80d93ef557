import { sleep, type Clock } from '../runtime/clock.js';
import type { Runnable } from '../runtime/runnable.js';
import type { BerthMetrics } from '../metrics/registry.js';
import type { StatusWriter } from '../reconcile/ports.js';
import { ORPHAN_HOLDS, orphanedCondition } from '../reconcile/orphans.js';

const PHASES = ['Pending', 'Progressing', 'Ready', 'Degraded', 'Failed', 'Terminating'];

/**
 * berth_environments{phase} and berth_deletions_held{reason}, counted from the statuses written
 * (one etcd read), every `intervalMs`.
 */
export function phaseGauge(o: { status: StatusWriter; metrics: Pick<BerthMetrics, 'environments' | 'deletionsHeld'>; clock: Clock; intervalMs?: number }): Runnable {
  return {
    name: 'environment-gauge',
    async run(signal) {
      while (!signal.aborted) {
        try {
          const counts = new Map<string, number>();
          const held = new Map<string, number>();
          for (const s of (await o.status.listEnvironmentStatuses()).values()) {
            counts.set(s.phase, (counts.get(s.phase) ?? 0) + 1);
            const orphan = orphanedCondition(s);
            if (orphan) held.set(orphan.reason, (held.get(orphan.reason) ?? 0) + 1);
          }
          for (const phase of PHASES) o.metrics.environments.set({ phase }, counts.get(phase) ?? 0);
          for (const reason of ORPHAN_HOLDS) o.metrics.deletionsHeld.set({ reason }, held.get(reason) ?? 0);
        } catch {
          /* next round */
        }
        await sleep(o.clock, o.intervalMs ?? 5_000, signal);
      }
    },
  };
}
