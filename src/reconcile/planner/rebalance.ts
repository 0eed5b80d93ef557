import { parseDuration, type Environment, type RebalanceRecord, type RolledBack, type ServiceSpec, type ServiceStatus } from '../../api/index.js';
import { swarmServiceName } from '../../swarm/labels.js';
import type { ObservedNode, ObservedService, ObservedTask, ServiceUpdateState, SwarmSnapshot } from '../../swarm/model.js';
import type { NodeLookup } from '../../swarm/node-index.js';
import { buildServiceSpec, runsVersion } from '../../swarm/service-spec.js';
import { ownedServices, rollingCandidates } from './services.js';

/*
 * Spreading a service's running tasks over the environment's nodes after it grows (or a node
 * comes back). Swarm places new tasks on the emptiest matching node but never moves running ones
 * (moby#24103). A forced rolling update restarts every task, and with start-first the new task is
 * placed while the old one still counts, so once the nodes are even each further restart lands on
 * any of them: measured on the lab, 3+3+0 ended 3+1+2 or 2+1+3, never 2+2+2. So berth moves one
 * task at a time by surge and trim: one replica more (Swarm puts it on the emptiest node; the
 * healthcheck gates it: it counts once running and healthy), then back to the spec's count, which
 * Swarm takes from the node with most tasks of the service. Only as many tasks move as need to,
 * and the service never runs fewer than its replicas.
 */

export type RebalanceResult = 'balanced' | 'unbalanced' | 'superseded';

/** The Swarm service whose tasks are spread: the rolling service, or a blue-green service's live colour. */
export interface RebalanceTarget {
  service: ObservedService;
  tasks: ObservedTask[];
}

export interface RebalanceInput {
  spec: ServiceSpec;
  generation: number;
  /** The nodes the environment holds and Swarm can schedule on. */
  nodes: ObservedNode[];
  /** undefined: nothing to spread now (no service yet, a release or a rollback in the way). */
  target: RebalanceTarget | undefined;
  /** The service's rebalance record from the last status. */
  previous: RebalanceRecord | undefined;
  now: Date;
}

export interface RebalanceDecision {
  /** The replica count to ask of Swarm this pass: the spec's, or one more while a task moves. */
  replicas: number;
  /** What the status keeps (undefined: nothing to remember). */
  record: RebalanceRecord | undefined;
  /** Set in the pass a rebalance ends (berth_rebalances_total). */
  result?: RebalanceResult;
  /** What this pass did, for the log; undefined when nothing. */
  event?: string;
}

/**
 * How long a move that failed may keep its extra task while Swarm retries it. Scaling down, Swarm
 * removes a task from a node with the most tasks of the service, so trimming while the extra task
 * fails on the emptiest node would stop a healthy task and keep the failing one. After 5 failures
 * within 5 minutes Swarm places that slot on another node; once it runs there the trim takes a
 * healthy task from the fullest node, back to the spread before the move.
 */
const FAILED_MOVE_HOLD_MS = 5 * 60_000;

/** Swarm is rolling, paused or rolling back an update: its tasks are not the ones to move. */
const UPDATE_IN_FLIGHT: ServiceUpdateState[] = ['updating', 'paused', 'rollback_started', 'rollback_paused'];

const isLive = (t: ObservedTask) => t.desiredState === 'running';
const isUp = (t: ObservedTask) => t.desiredState === 'running' && t.state === 'running';

/** Where Swarm spreads the tasks: per `spreadBy` label value when set, else per node. */
function domainOf(spec: ServiceSpec): (n: ObservedNode) => string {
  const label = spec.placement.spreadBy?.replace(/^node\.labels\./, '');
  return label ? (n) => `${label}=${n.labels[label] ?? ''}` : (n) => n.hostname;
}

/** Running tasks per spread domain of the held nodes; every domain is listed, an empty one at 0. */
export function tasksByDomain(spec: ServiceSpec, nodes: ObservedNode[], tasks: ObservedTask[]): Map<string, number> {
  const domain = domainOf(spec);
  const byNode = new Map(nodes.map((n) => [n.id, domain(n)]));
  const counts = new Map<string, number>([...byNode.values()].sort().map((d) => [d, 0]));
  for (const t of tasks) {
    const d = byNode.get(t.nodeId);
    if (d !== undefined && isUp(t)) counts.set(d, counts.get(d)! + 1);
  }
  return counts;
}

/**
 * How far the counts are from even: the tasks below ⌊n/d⌋ plus those above ⌈n/d⌉, over the d
 * domains. 0 exactly when no two domains differ by more than one task. A move that helps (a task
 * onto an emptiest domain, one off a fullest) lowers it.
 */
export function unevenness(counts: number[]): number {
  if (counts.length === 0) return 0;
  const total = counts.reduce((a, b) => a + b, 0);
  const floor = Math.floor(total / counts.length);
  const ceil = Math.ceil(total / counts.length);
  return counts.reduce((sum, c) => sum + Math.max(0, floor - c) + Math.max(0, c - ceil), 0);
}

/** Running tasks per node hostname (the status's tasksPerNode). */
export function tasksPerNode(tasks: ObservedTask[], nodes: NodeLookup): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tasks) {
    const host = nodes.get(t.nodeId)?.hostname;
    if (host && isUp(t)) out[host] = (out[host] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * Exactly the spec's replicas, every one running and healthy on a held node, and no Swarm update
 * under way: the only state a move starts from, or is judged in.
 */
function settled(target: RebalanceTarget, held: Set<string>, replicas: number): boolean {
  if (target.service.updateStatus && UPDATE_IN_FLIGHT.includes(target.service.updateStatus.state)) return false;
  const live = target.tasks.filter(isLive);
  return target.service.replicas === replicas && live.length === replicas && live.every((t) => isUp(t) && held.has(t.nodeId));
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const show = (counts: Map<string, number>) => [...counts].map(([d, n]) => `${d} ${n}`).join(', ');

/**
 * One service, one pass: (spec, held nodes, the target's tasks, the last record) → the replica
 * count to ask for and the record to keep. Pure. A move is: surge (replicas + 1) → once the extra
 * task runs healthy, trim (replicas) → once settled, judge: even → done; closer to even → next
 * move; not closer (Swarm put the task where it did not help) → Unbalanced. The extra task not
 * running within `strategy.progressDeadline`, or Swarm finding no node for it, is Unbalanced too.
 * Unbalanced is not retried for the same node set and spec generation: it does not loop.
 */
export function decideRebalance(input: RebalanceInput): RebalanceDecision {
  const { spec, target, now } = input;
  const replicas = spec.replicas;
  const nodeIds = input.nodes.map((n) => n.id).sort();
  const previous = input.previous;
  const current = previous && previous.generation === input.generation && sameList(previous.nodes, nodeIds) ? previous : undefined;
  // Nothing (more) to move: a move under way stops with its record.
  const rest = (): RebalanceDecision =>
    previous?.state === 'Moving'
      ? { replicas, record: undefined, result: 'superseded', event: 'the nodes, the spec or the service changed: this move stops, the next pass looks again' }
      : { replicas, record: undefined };

  if (spec.placement.rebalance === false || !target || replicas < 2 || input.nodes.length < 2) return rest();
  const counts = tasksByDomain(spec, input.nodes, target.tasks);
  const uneven = unevenness([...counts.values()]);
  const held = new Set(nodeIds);
  const isSettled = settled(target, held, replicas);

  const surged = target.service.replicas > replicas;
  const live = target.tasks.filter(isLive);
  const extraRuns = surged && live.length > replicas && live.every((t) => isUp(t) && held.has(t.nodeId));
  const unplaced = surged ? live.find((t) => t.state === 'pending' && /no suitable node/i.test(`${t.error ?? ''} ${t.message}`)) : undefined;

  if (current?.state === 'Unbalanced') {
    if (surged) {
      const hold = !extraRuns && !unplaced && now.getTime() - Date.parse(current.since) < FAILED_MOVE_HOLD_MS;
      return { replicas: hold ? replicas + 1 : replicas, record: current, ...(hold ? {} : { event: `back to ${replicas} after the failed move` }) };
    }
    return isSettled && uneven === 0 ? { replicas, record: undefined } : { replicas, record: current };
  }

  if (current?.state === 'Moving') {
    const deadline = parseDuration(spec.strategy.progressDeadline);
    const late = now.getTime() - Date.parse(current.since) >= deadline;
    /** Unbalanced; `keepExtra`: the extra task stays until Swarm runs it elsewhere (FAILED_MOVE_HOLD_MS). */
    const stuck = (why: string, keepExtra = false): RebalanceDecision => ({
      replicas: keepExtra ? replicas + 1 : replicas,
      record: { ...current, state: 'Unbalanced', since: now.toISOString(), message: `${why}; tasks stay ${show(counts)} until the nodes or the spec change` },
      result: 'unbalanced',
      event: why,
    });
    if (surged) {
      if (extraRuns) return { replicas, record: current, event: `the extra task runs (${show(counts)}): back to ${replicas}` };
      if (unplaced) return stuck(`no room for a task: ${unplaced.error ?? unplaced.message}`);
      if (late) return stuck(`the extra task was not running and healthy within ${spec.strategy.progressDeadline}`, true);
      return { replicas: replicas + 1, record: current };
    }
    if (!isSettled) return late ? stuck(`the tasks did not settle within ${spec.strategy.progressDeadline}`) : { replicas, record: current };
    if (uneven === 0) return { replicas, record: undefined, result: 'balanced', event: `even after ${current.moves} moved: ${show(counts)}` };
    if (uneven >= current.unevenness) return stuck(`moving a task did not even them out (${show(counts)})`);
    return {
      replicas: replicas + 1,
      record: { ...current, since: now.toISOString(), moves: current.moves + 1, unevenness: uneven, message: moving(current.moves + 1, counts) },
      event: `moving task ${current.moves + 1} (${show(counts)})`,
    };
  }

  if (!isSettled || uneven === 0) return rest();
  return {
    ...(previous?.state === 'Moving' ? { result: 'superseded' as const } : {}),
    replicas: replicas + 1,
    record: { state: 'Moving', nodes: nodeIds, generation: input.generation, since: now.toISOString(), moves: 1, unevenness: uneven, message: moving(1, counts) },
    event: `uneven (${show(counts)}): moving task 1`,
  };
}

function moving(n: number, counts: Map<string, number>): string {
  return `moving task ${n} to spread ${show(counts)}`;
}

/**
 * The Swarm service whose tasks a rebalance may move now, with its tasks: the rolling service
 * when it runs the spec (not while Swarm rolled it back); a blue-green service's live colour when
 * it runs the spec and no cutover is under way (nothing pending, the other colour at 0).
 */
export function rebalanceTarget(
  env: string,
  service: string,
  spec: ServiceSpec,
  snapshot: SwarmSnapshot,
  previous: ServiceStatus | undefined,
  rolledBack: RolledBack | undefined,
): RebalanceTarget | undefined {
  const owned = ownedServices(env, snapshot.services);
  const withTasks = (s: ObservedService): RebalanceTarget => ({ service: s, tasks: snapshot.tasks.filter((t) => t.serviceId === s.id) });
  if (spec.strategy.type === 'rolling') {
    const { current } = rollingCandidates(env, service, owned);
    const only = current.length === 1 ? current[0]! : undefined;
    return only && !rolledBack && runsVersion(only, buildServiceSpec(env, service, spec)) ? withTasks(only) : undefined;
  }
  const color = previous?.activeColor;
  if (!color || previous?.pending) return undefined;
  const byName = (c: 'blue' | 'green') => owned.find((s) => s.name === swarmServiceName(env, service, c));
  const live = byName(color);
  const idle = byName(color === 'blue' ? 'green' : 'blue');
  if (!live || (idle && idle.replicas > 0) || !runsVersion(live, buildServiceSpec(env, service, spec, color))) return undefined;
  return withTasks(live);
}

/**
 * Every service of the environment, decided: what each one's replicas are this pass, and why.
 * `held`: the nodes the environment holds once this pass's claims and releases are applied (a
 * node claimed now is labelled before any service changes; tasks on a node released now leave the
 * service unsettled, so nothing starts moving onto a set of nodes that is going away).
 */
export function planRebalances(
  env: Environment,
  snapshot: SwarmSnapshot,
  held: ObservedNode[],
  previous: Record<string, ServiceStatus> | undefined,
  rolledBack: Record<string, RolledBack>,
  now: Date,
): Map<string, RebalanceDecision> {
  const name = env.metadata.name;
  const out = new Map<string, RebalanceDecision>();
  for (const [service, spec] of Object.entries(env.spec.services)) {
    const before = previous?.[service];
    out.set(
      service,
      decideRebalance({
        spec,
        generation: env.metadata.generation ?? 0,
        nodes: held,
        target: rebalanceTarget(name, service, spec, snapshot, before, rolledBack[service]),
        previous: before?.rebalance,
        now,
      }),
    );
  }
  return out;
}

/** The environment as this pass asks Swarm for it: each service at its decided replica count. */
export function withRebalanceReplicas(env: Environment, decisions: Map<string, RebalanceDecision>): Environment {
  const moving = [...decisions].filter(([service, d]) => env.spec.services[service] && d.replicas !== env.spec.services[service]!.replicas);
  if (moving.length === 0) return env;
  const services = { ...env.spec.services };
  for (const [service, d] of moving) services[service] = { ...services[service]!, replicas: d.replicas };
  return { ...env, spec: { ...env.spec, services } };
}
