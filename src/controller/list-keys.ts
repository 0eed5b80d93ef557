import type { SwarmApi } from '../swarm/api.js';
import { LABEL_ENV, LABEL_INSTALLATION } from '../swarm/labels.js';
import type { ResourceReader, StatusWriter } from '../reconcile/ports.js';
import { envKey, groupKey } from './keys.js';

/**
 * Every key the controller should look at: environments in etcd, environments with a status
 * (deleted ones still to clean up), environments still owning Swarm objects (this installation's,
 * or unlabelled ones of an older berth), and groups.
 */
export async function allKeys(resources: ResourceReader, status: StatusWriter, swarm: SwarmApi, installation: string): Promise<string[]> {
  const [envNames, statusNames, groups, nodes, services] = await Promise.all([
    resources.listEnvironmentNames(),
    status.listEnvironmentStatusNames(),
    resources.listGroups(),
    swarm.listNodes(),
    swarm.listServices(),
  ]);
  const envs = new Set([...envNames, ...statusNames]);
  const mayBeOurs = (labels: Record<string, string>) => (labels[LABEL_INSTALLATION] ?? installation) === installation;
  for (const o of [...nodes, ...services]) if (o.labels[LABEL_ENV] && mayBeOurs(o.labels)) envs.add(o.labels[LABEL_ENV]);
  return [...[...envs].sort().map(envKey), ...groups.map((g) => groupKey(g.metadata.name))];
}
