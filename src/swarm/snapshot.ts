import type { SwarmApi } from './api.js';
import type { SwarmSnapshot } from './model.js';

/**
 * Reads the whole Swarm as berth sees it: all nodes, every berth-labelled service and their
 * tasks. Read fresh on every reconcile (level-triggered): no cache to go stale.
 */
export async function readSnapshot(swarm: SwarmApi): Promise<SwarmSnapshot> {
  const [nodes, services] = await Promise.all([swarm.listNodes(), swarm.listServices()]);
  const tasks = await swarm.listTasks(services.map((s) => s.id));
  return { nodes, services, tasks };
}
