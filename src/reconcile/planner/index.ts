import type { Environment } from '../../api/environment.js';
import type { EnvironmentGroup } from '../../api/group.js';
import type { RolledBack } from '../../api/status.js';
import { isJobRun } from '../../swarm/labels.js';
import type { SwarmSnapshot } from '../../swarm/model.js';
import type { Ownership } from '../ownership.js';
import type { Action } from './actions.js';
import { planNodeClaims, planReleaseAll, type NodeClaimPlan } from './nodes.js';
import { ownedServices, planRemoveAll, planRollingServices } from './services.js';

export * from './actions.js';
export * from './nodes.js';
export * from './rebalance.js';
export * from './services.js';

export interface EnvironmentPlan {
  nodes: NodeClaimPlan;
  /** In the order to apply: claims first (so new tasks can schedule), services, then releases. */
  actions: Action[];
}

/** The zone label growing spreads over: the first service's spreadBy, else `zone`. */
export function zoneLabelOf(env: Environment): string {
  for (const svc of Object.values(env.spec.services)) {
    if (svc.placement.spreadBy) return svc.placement.spreadBy.replace(/^node\.labels\./, '');
  }
  return 'zone';
}

/**
 * Desired environment + its group + the Swarm as observed → what to change. Pure. `snapshot`
 * holds only the services this installation owns (ownership.ts); nodes are all of them.
 * `rolledBack` (rolledBackUpdates): the rolling services whose spec Swarm rolled back, left as they run.
 * `nodes`: the node-claim plan, when the caller already made it for the same inputs.
 */
export function planEnvironment(
  env: Environment,
  group: EnvironmentGroup,
  snapshot: SwarmSnapshot,
  o: Ownership,
  rolledBack: Record<string, RolledBack> = {},
  nodes: NodeClaimPlan = planNodeClaims(env.metadata.name, env.spec.nodes, group, snapshot, o, zoneLabelOf(env)),
): EnvironmentPlan {
  const name = env.metadata.name;
  // A job's runs are the jobs reconcile's (reconcile/jobs/): not services to create or remove here.
  const owned = ownedServices(name, snapshot.services).filter((s) => !isJobRun(s));
  const services = planRollingServices(name, env.spec.services, owned, rolledBack);
  const claims = nodes.actions.filter((a) => a.kind === 'claimNode' || a.kind === 'adoptNode');
  const releases = nodes.actions.filter((a) => a.kind === 'releaseNode');
  return { nodes, actions: [...claims, ...services, ...releases] };
}

/** An environment being deleted: remove its (owned) services, then release its nodes. */
export function planEnvironmentRemoval(env: string, snapshot: SwarmSnapshot, o: Ownership): Action[] {
  return [...planRemoveAll(env, snapshot.services), ...planReleaseAll(env, snapshot, o)];
}
