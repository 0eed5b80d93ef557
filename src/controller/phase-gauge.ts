import { sleep, type Clock } from '../runtime/clock.js';
import type { Runnable } from '../runtime/runnable.js';
import type { BerthMetrics } from '../metrics/registry.js';
import type { StatusWriter } from '../reconcile/ports.js';

const PHASES = ['Pending', 'Progressing', 'Ready', 'Degraded', 'Failed', 'Terminating'];

/** berth_environments{phase}, counted from the statuses written (one etcd read), every `intervalMs`. */
export function phaseGauge(o: { status: StatusWriter; metrics: Pick<BerthMetrics, 'environments'>; clock: Clock; intervalMs?: number }): Runnable {
  return {
    name: 'environment-gauge',
    async run(signal) {
      while (!signal.aborted) {
        try {
          const counts = new Map<string, number>();
          for (const s of (await o.status.listEnvironmentStatuses()).values()) counts.set(s.phase, (counts.get(s.phase) ?? 0) + 1);
          for (const phase of PHASES) o.metrics.environments.set({ phase }, counts.get(phase) ?? 0);
        } catch {
          /* next round */
        }
        await sleep(o.clock, o.intervalMs ?? 5_000, signal);
      }
    },
  };
}
