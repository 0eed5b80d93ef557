import { satisfies, spreadValue, type Constraint, type ConstraintSubject } from './constraints.js';

/*
 * Where Swarm's scheduler puts new tasks of one service (swarmkit manager/scheduler), as a pure
 * function. The filter pipeline drops nodes that are not ready and active, that fail a
 * constraint, whose host-mode port is taken, or that already hold MaxReplicas tasks of the
 * service; of those left, a task goes to the node with the fewest tasks of this service, then
 * the fewest tasks overall. A spread preference first picks the label value (branch) holding
 * the fewest tasks of the service. When nothing fits, the task stays pending with Swarm's
 * "no suitable node (…)" explanation.
 */

export interface SchedulableNode extends ConstraintSubject {
  /** Ready and availability active: the only nodes that take new tasks. */
  available: boolean;
}

export interface Placement {
  constraints: readonly Constraint[];
  /** At most this many tasks of the service on one node; 0 = no limit. */
  maxReplicas: number;
  /** Descriptor of the first spread preference, e.g. `node.labels.zone`. */
  spreadBy?: string;
  /** Published ports the task binds in host mode: a node can hold only one task using each. */
  hostPorts: readonly number[];
}

export interface Occupancy {
  /** Tasks of this service already placed on the node (and still meant to run). */
  serviceTasks(nodeId: string): number;
  /** All tasks on the node still meant to run. */
  totalTasks(nodeId: string): number;
  hostPortsInUse(nodeId: string): ReadonlySet<number> | undefined;
}

export interface PlacementResult {
  /** One node id per placed task, in order. */
  nodeIds: string[];
  /** Why the remaining tasks could not be placed (they stay pending). */
  unplacedReason?: string;
}

export function placeTasks(
  nodes: readonly SchedulableNode[],
  placement: Placement,
  occupancy: Occupancy,
  count: number,
): PlacementResult {
  const rejected = { unavailable: 0, constraints: 0, hostPort: 0 };
  const feasible: { node: SchedulableNode; order: number; mine: number; total: number; branch: string }[] = [];
  nodes.forEach((node, order) => {
    if (!node.available) rejected.unavailable++;
    else if (!satisfies(node, placement.constraints)) rejected.constraints++;
    else if (placement.hostPorts.some((p) => occupancy.hostPortsInUse(node.id)?.has(p))) rejected.hostPort++;
    else {
      feasible.push({
        node,
        order,
        mine: occupancy.serviceTasks(node.id),
        total: occupancy.totalTasks(node.id),
        branch: placement.spreadBy ? spreadValue(placement.spreadBy, node) : '',
      });
    }
  });
  const branchLoad = new Map<string, number>();
  for (const f of feasible) branchLoad.set(f.branch, (branchLoad.get(f.branch) ?? 0) + f.mine);

  const nodeIds: string[] = [];
  // A fixed host port can be bound once per node, so one node takes at most one such task.
  const perNodeCap = placement.hostPorts.length > 0 ? 1 : Infinity;
  const placedHere = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const open = feasible.filter(
      (f) => (placement.maxReplicas === 0 || f.mine < placement.maxReplicas) && (placedHere.get(f.node.id) ?? 0) < perNodeCap,
    );
    if (open.length === 0) {
      return { nodeIds, unplacedReason: explain(rejected, feasible.length, nodes.length) };
    }
    let best = open[0]!;
    for (const f of open) if (better(f, best, branchLoad)) best = f;
    best.mine++;
    best.total++;
    branchLoad.set(best.branch, (branchLoad.get(best.branch) ?? 0) + 1);
    placedHere.set(best.node.id, (placedHere.get(best.node.id) ?? 0) + 1);
    nodeIds.push(best.node.id);
  }
  return { nodeIds };
}

type Ranked = { order: number; mine: number; total: number; branch: string };

function better(a: Ranked, b: Ranked, branchLoad: ReadonlyMap<string, number>): boolean {
  const la = branchLoad.get(a.branch) ?? 0;
  const lb = branchLoad.get(b.branch) ?? 0;
  if (la !== lb) return la < lb;
  if (a.mine !== b.mine) return a.mine < b.mine;
  if (a.total !== b.total) return a.total < b.total;
  return a.order < b.order;
}

const nodesWord = (n: number) => (n === 1 ? '1 node' : `${n} nodes`);

/** swarmkit's pipeline explanation: one clause per filter that rejected nodes, in filter order. */
function explain(rejected: { unavailable: number; constraints: number; hostPort: number }, full: number, total: number): string {
  if (total === 0) return 'no suitable node';
  const parts: string[] = [];
  if (rejected.unavailable) parts.push(`${nodesWord(rejected.unavailable)} not available for new tasks`);
  if (rejected.constraints) parts.push(`scheduling constraints not satisfied on ${nodesWord(rejected.constraints)}`);
  if (rejected.hostPort) parts.push(`host-mode port already in use on ${nodesWord(rejected.hostPort)}`);
  if (full) parts.push('max replicas per node limit exceed');
  return `no suitable node (${parts.join('; ')})`;
}
