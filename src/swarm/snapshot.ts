import type { SwarmApi } from './api.js';
import type { SwarmSnapshot } from './model.js';

/**
 * What one environment's reconcile sees of the Swarm: every node (claims are decided against the
 * whole pool), and the services `env` owns with their tasks. Read on every reconcile
 * (level-triggered); in the controller `swarm` is the Swarm cache, so this costs no Docker call
 * once the cache is current.
 */
export async function readSnapshot(swarm: SwarmApi, env: string): Promise<SwarmSnapshot> {
  const [nodes, services] = await Promise.all([swarm.nodeIndex(), swarm.listServices(env)]);
  const tasks = await swarm.listTasks(services.map((s) => s.id));
  return { nodes, services, tasks };
}
