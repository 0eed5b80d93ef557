import type { Logger } from 'pino';
import { setCondition, type GroupStatus } from '../api/index.js';
import type { SwarmApi } from '../swarm/api.js';
import { LABEL_ENV } from '../swarm/labels.js';
import { isSchedulable } from '../swarm/node-index.js';
import { inPool } from './planner/nodes.js';
import type { ResourceReader, StatusWriter } from './ports.js';
import type { ReconcileResult } from '../runtime/handler.js';

/** Writes a group's status: how many schedulable nodes its pool has and who claims them. */
export class GroupReconciler {
  constructor(private readonly d: { swarm: SwarmApi; resources: ResourceReader; status: StatusWriter; log: Logger; now?: () => Date }) {}

  async reconcile(name: string): Promise<ReconcileResult> {
    const group = await this.d.resources.getGroup(name);
    if (!group) {
      await this.d.status.deleteGroupStatus(name);
      return {};
    }
    const now = this.d.now?.() ?? new Date();
    const nodes = (await this.d.swarm.listNodes()).filter((n) => inPool(n, group));
    const claims: Record<string, number> = {};
    for (const n of nodes) {
      const env = n.labels[LABEL_ENV];
      if (env) claims[env] = (claims[env] ?? 0) + 1;
    }
    const poolNodes = nodes.filter(isSchedulable).length;
    const previous = await this.d.status.getGroupStatus(name);
    const empty = poolNodes === 0;
    const status: GroupStatus = {
      observedGeneration: group.metadata.generation ?? 0,
      phase: empty ? 'Degraded' : 'Ready',
      conditions: setCondition(
        previous?.conditions ?? [],
        empty
          ? { type: 'Ready', status: 'False', reason: 'PoolEmpty', message: 'no Ready+Active node matches the nodeSelector' }
          : { type: 'Ready', status: 'True', reason: 'PoolAvailable', message: `${poolNodes} schedulable nodes, ${group.spec.spare} kept spare` },
        now,
      ),
      poolNodes,
      claims,
      updatedAt: now.toISOString(),
    };
    const strip = (s: GroupStatus | undefined) => (s ? JSON.stringify({ ...s, updatedAt: '' }) : '');
    if (strip(previous) !== strip(status)) await this.d.status.putGroupStatus(name, status);
    return {};
  }
}
