import type { SwarmApi } from '../swarm/api.js';
import { LABEL_ENV } from '../swarm/labels.js';
import type { ResourceReader, StatusWriter } from '../reconcile/ports.js';
import { envKey, groupKey } from './keys.js';

/**
 * Every key the controller should look at: environments in etcd, environments with a status
 * (deleted ones still to clean up), environments still owning Swarm objects, and groups.
 */
export async function allKeys(resources: ResourceReader, status: StatusWriter, swarm: SwarmApi): Promise<string[]> {
  const [envNames, statusNames, groups, nodes, services] = await Promise.all([
    resources.listEnvironmentNames(),
    status.listEnvironmentStatusNames(),
    resources.listGroups(),
    swarm.listNodes(),
    swarm.listServices(),
  ]);
  const envs = new Set([...envNames, ...statusNames]);
  for (const n of nodes) if (n.labels[LABEL_ENV]) envs.add(n.labels[LABEL_ENV]);
  for (const s of services) if (s.labels[LABEL_ENV]) envs.add(s.labels[LABEL_ENV]);
  return [...[...envs].sort().map(envKey), ...groups.map((g) => groupKey(g.metadata.name))];
}
