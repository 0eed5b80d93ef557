import {
  parseDuration,
  routePort,
  setCondition,
  type BlueGreenState,
  type Condition,
  type Environment,
  type EnvironmentStatus,
  type JobStatus,
  type Phase,
  type ServiceSpec,
  type ResolvedImage,
  type ServiceStatus,
  type RollbackRequest,
} from '../api/index.js';
import type { ObservedNode, ObservedService, ObservedTask } from '../swarm/model.js';
import type { NodeLookup } from '../swarm/node-index.js';
import type { NodeClaimPlan } from './planner/nodes.js';
import type { PromotionOutcome } from './releases/promote.js';
import { nextRelease } from './releases/release.js';

/** `host:port` of each running task's published route port: what nginx should send traffic to. */
export function serviceEndpoints(spec: ServiceSpec, tasks: ObservedTask[], nodes: NodeLookup): string[] {
  const target = routePort(spec);
  if (target === undefined) return [];
  const out = new Set<string>();
  for (const t of tasks) {
    if (t.state !== 'running' || t.desiredState !== 'running') continue;
    const addr = nodes.get(t.nodeId)?.addr;
    const port = t.ports.find((p) => p.target === target);
    if (addr && port) out.add(`${addr}:${port.published}`);
  }
  return [...out].sort();
}

export function runningReplicas(tasks: ObservedTask[]): number {
  return tasks.filter((t) => t.state === 'running' && t.desiredState === 'running').length;
}

export function serviceStatus(spec: ServiceSpec, service: ObservedService | undefined, tasks: ObservedTask[], nodes: NodeLookup): ServiceStatus {
  return {
    desiredReplicas: spec.replicas,
    runningReplicas: service ? runningReplicas(tasks) : 0,
    image: service?.image ?? spec.image,
    endpoints: service ? serviceEndpoints(spec, tasks, nodes) : [],
    // A start-first update runs old and new tasks side by side: the count alone would say Ready.
    ...(service?.updateStatus?.state === 'updating' ? { updating: true } : {}),
  };
}

/**
 * When the controller first saw the environment: kept from its last status, else `now`. A status
 * lost (or written by an older berth) restarts the count, so an environment never expires early.
 */
export function firstObservedAt(previous: EnvironmentStatus | undefined, now: Date): Date {
  const at = previous?.firstObservedAt ? Date.parse(previous.firstObservedAt) : NaN;
  return Number.isNaN(at) ? now : new Date(at);
}

/** `ttl` after the controller first saw the environment (server time, whatever the client's clock). */
export function expiresAt(env: Environment, firstObserved: Date): Date | undefined {
  if (!env.spec.ttl) return undefined;
  return new Date(firstObserved.getTime() + parseDuration(env.spec.ttl));
}

export interface EnvironmentObservation {
  env: Environment;
  previous: EnvironmentStatus | undefined;
  nodes: NodeClaimPlan;
  heldNodes: ObservedNode[];
  services: Record<string, ServiceStatus>;
  /** Each job's state (reconcile/jobs/); jobs do not make the phase. */
  jobs?: Record<string, JobStatus>;
  /** Whether this pass changed anything in the Swarm. */
  changed: boolean;
  /** One entry per blue-green service (bluegreen/ outcomes). */
  cutover?: { state: BlueGreenState; message: string }[];
  /** Services whose route upstream another owner holds (RouteConflict: Degraded). */
  routeConflicts?: { service: string; upstream: string; owner: string }[];
  /** `<service>: <proxies>` dropped from a drain after --proxy-wait (ProxyLagging). */
  laggingProxies?: string[];
  /** Each service's tag resolved to its digest (status.images). */
  images?: Record<string, ResolvedImage>;
  /** Each job's tag resolved to its digest (status.jobImages). */
  jobImages?: Record<string, ResolvedImage>;
  /** Tracked tags whose refresh failed this pass: they keep their digest (ImageUnresolved, not Degraded). */
  staleImages?: { service: string; message: string }[];
  /** spec.promotion: what this pass decided (releases/promote.ts). */
  promotion?: Pick<PromotionOutcome, 'promoted' | 'pending' | 'rollback'>;
  /** Without spec.promotion: the `berth rollback` that pins the images until the spec's images change (releases/rollback.ts). */
  pinnedRollback?: RollbackRequest | undefined;
  now: Date;
}

/** What each blue-green state means for the CutoverReady condition and the phase. */
const CUTOVER_READINESS: Record<BlueGreenState, 'moving' | 'waiting' | 'abandoned' | 'serving'> = {
  Fresh: 'moving',
  Starting: 'moving',
  Unhealthy: 'moving',
  Resizing: 'moving',
  Draining: 'moving',
  WaitingForPromotion: 'waiting',
  Aborted: 'abandoned',
  CutOver: 'serving',
};

/**
 * Phase and conditions. Degraded: the pool cannot supply the nodes (NodesShort), a blue-green
 * cutover was abandoned while the old colour keeps serving (CutoverAbandoned), or Swarm rolled a
 * rolling update back (RolledBack). Unbalanced (a condition only: every replica runs) while a
 * service's tasks are being spread over the nodes (Progressing) or could not be. Ready: every node
 * held, every service running its desired replicas, every blue-green route on a converged colour.
 * Progressing: on the way there.
 */
export function environmentStatus(o: EnvironmentObservation): EnvironmentStatus {
  let conditions: Condition[] = o.previous?.conditions ?? [];
  const { desired, missing } = o.nodes;
  conditions = setCondition(
    conditions,
    missing > 0
      ? { type: 'NodesReady', status: 'False', reason: 'NodesShort', message: `NodesShort: missing ${missing} of ${desired}` }
      : { type: 'NodesReady', status: 'True', reason: 'NodesClaimed', message: `${desired} of ${desired} nodes held` },
    o.now,
  );
  const lagging = Object.entries(o.services).filter(([, s]) => s.runningReplicas !== s.desiredReplicas || s.updating);
  conditions = setCondition(
    conditions,
    lagging.length > 0
      ? {
          type: 'ServicesReady',
          status: 'False',
          reason: 'ReplicasNotRunning',
          message: lagging.map(([n, s]) => `${n}: ${s.runningReplicas}/${s.desiredReplicas} running${s.updating ? ', Swarm update in progress' : ''}`).join('; '),
        }
      : { type: 'ServicesReady', status: 'True', reason: 'AllRunning', message: 'every service runs its desired replicas' },
    o.now,
  );
  const cutover = o.cutover ?? [];
  const abandoned = cutover.filter((c) => CUTOVER_READINESS[c.state] === 'abandoned');
  const waiting = cutover.filter((c) => CUTOVER_READINESS[c.state] === 'waiting');
  const moving = cutover.filter((c) => CUTOVER_READINESS[c.state] === 'moving');
  if (cutover.length === 0) conditions = conditions.filter((c) => c.type !== 'CutoverReady');
  else {
    const join = (list: typeof cutover) => list.map((c) => c.message).join('; ');
    conditions = setCondition(
      conditions,
      abandoned.length > 0
        ? { type: 'CutoverReady', status: 'False', reason: 'CutoverAbandoned', message: join(abandoned) }
        : waiting.length > 0
          ? { type: 'CutoverReady', status: 'False', reason: 'WaitingForPromotion', message: join(waiting) }
          : moving.length > 0
            ? { type: 'CutoverReady', status: 'Unknown', reason: 'CutoverProgressing', message: join(moving) }
            : { type: 'CutoverReady', status: 'True', reason: 'ActiveColorServing', message: join(cutover) },
      o.now,
    );
  }
  const rolledBack = Object.entries(o.services).flatMap(([n, s]) =>
    s.rolledBack ? [`${n}: Swarm rolled back the update to ${s.rolledBack.image} (${s.rolledBack.message}); not retried until the spec changes`] : [],
  );
  conditions =
    rolledBack.length === 0
      ? conditions.filter((c) => c.type !== 'RolledBack')
      : setCondition(conditions, { type: 'RolledBack', status: 'True', reason: 'UpdateRolledBack', message: rolledBack.join('; ') }, o.now);
  const rebalancing = Object.entries(o.services).filter(([, s]) => s.rebalance);
  const movingTasks = rebalancing.filter(([, s]) => s.rebalance!.state === 'Moving');
  const stuck = rebalancing.filter(([, s]) => s.rebalance!.state === 'Unbalanced');
  conditions = optionalCondition(
    conditions,
    'Unbalanced',
    rebalancing.length > 0
      ? {
          status: 'True',
          reason: stuck.length > 0 ? 'RebalanceStuck' : 'Rebalancing',
          message: rebalancing.map(([n, s]) => `${n}: ${s.rebalance!.message}`).join('; '),
        }
      : undefined,
    o.now,
  );
  const conflicts = o.routeConflicts ?? [];
  const conflictWhy = conflicts.map((c) => `${c.service}: upstream ${c.upstream} belongs to ${c.owner}`).join('; ');
  conditions = optionalCondition(conditions, 'RouteConflict', conflicts.length > 0 ? { status: 'True', reason: 'UpstreamOwnedElsewhere', message: conflictWhy } : undefined, o.now);
  const laggingProxies = o.laggingProxies ?? [];
  conditions = optionalCondition(
    conditions,
    'ProxyLagging',
    laggingProxies.length > 0 ? { status: 'True', reason: 'ProxyWaitExceeded', message: `did not apply the cutover within --proxy-wait, dropped from the drain: ${laggingProxies.join('; ')}` } : undefined,
    o.now,
  );
  const stale = o.staleImages ?? [];
  conditions = optionalCondition(
    conditions,
    'ImageUnresolved',
    stale.length > 0 ? { status: 'True', reason: 'TrackingLookupFailed', message: `${stale.map((u) => `${u.service}: ${u.message}`).join('; ')}; running the digest resolved before` } : undefined,
    o.now,
  );
  // A pass that gets here found every secret and config its services name.
  conditions = conditions.filter((c) => c.type !== 'SwarmObjectMissing');
  const phase: Phase =
    missing > 0 || abandoned.length > 0 || rolledBack.length > 0 || conflicts.length > 0
      ? 'Degraded'
      : lagging.length > 0 || o.changed || moving.length > 0 || waiting.length > 0 || movingTasks.length > 0
        ? 'Progressing'
        : 'Ready';
  const degradedWhy = [
    ...(missing > 0 ? [`NodesShort: missing ${missing} of ${desired}`] : []),
    ...abandoned.map((c) => c.message),
    ...rolledBack,
    ...(conflicts.length > 0 ? [`RouteConflict: ${conflictWhy}`] : []),
  ].join('; ');
  const degradedReason = missing > 0 ? 'Degraded' : abandoned.length > 0 ? 'CutoverAbandoned' : rolledBack.length > 0 ? 'UpdateRolledBack' : 'RouteConflict';
  conditions = promotionConditions(conditions, o);
  const pinned = o.pinnedRollback;
  conditions = optionalCondition(
    conditions,
    'Pinned',
    pinned
      ? { status: 'True', reason: 'RolledBack', message: `pinned to release ${pinned.to} by ${pinned.by} at ${pinned.at}, until the spec's images change (${Object.entries(pinned.specImages ?? {}).sort().map(([svc, img]) => `${svc}=${img}`).join(', ')})` }
      : undefined,
    o.now,
  );
  const rollback = o.promotion?.rollback ?? pinned;
  conditions = setCondition(
    conditions,
    phase === 'Ready'
      ? { type: 'Ready', status: 'True', reason: 'Converged', message: 'the Swarm matches the spec' }
      : {
          type: 'Ready',
          status: 'False',
          reason: phase === 'Degraded' ? degradedReason : phase,
          message: phase === 'Degraded' ? degradedWhy : 'converging',
        },
    o.now,
  );
  const firstObserved = firstObservedAt(o.previous, o.now);
  const exp = expiresAt(o.env, firstObserved);
  const running = Object.fromEntries(Object.entries(o.env.spec.services).map(([svc, s]) => [svc, s.image]));
  const promoted = o.promotion?.promoted;
  const releases = nextRelease(o.previous, running, phase === 'Ready', promoted, o.now);
  return {
    observedGeneration: o.env.metadata.generation ?? 0,
    phase,
    conditions,
    nodes: o.heldNodes.map((n) => ({ id: n.id, hostname: n.hostname, addr: n.addr, state: n.state })),
    services: o.services,
    ...(o.jobs && Object.keys(o.jobs).length > 0 ? { jobs: o.jobs } : {}),
    firstObservedAt: firstObserved.toISOString(),
    ...(exp ? { expiresAt: exp.toISOString() } : {}),
    ...(o.images && Object.keys(o.images).length > 0 ? { images: o.images } : {}),
    ...(o.jobImages && Object.keys(o.jobImages).length > 0 ? { jobImages: o.jobImages } : {}),
    ...releases,
    ...(promoted ? { promoted } : {}),
    ...(rollback ? { rollback } : {}),
    ...(o.promotion?.pending ? { promotionPending: { gate: o.promotion.pending.gate, ...(o.promotion.pending.release ? { release: o.promotion.pending.release } : {}) } } : {}),
    updatedAt: o.now.toISOString(),
  };
}

/**
 * PromotionPending: which gate the upstream's newest release waits at. Promoted: the release
 * last promoted here, or the rollback that pins an earlier one. Absent without spec.promotion.
 */
function promotionConditions(conditions: Condition[], o: EnvironmentObservation): Condition[] {
  const p = o.promotion;
  const pending = p?.pending;
  const gateReason = { upstream: 'WaitingForUpstream', soak: 'Soaking', verify: 'Verifying', approval: 'WaitingForApproval', markTag: 'MarkTagFailed' } as const;
  conditions = optionalCondition(conditions, 'PromotionPending', pending ? { status: 'True', reason: gateReason[pending.gate], message: pending.message } : undefined, o.now);
  const promoted = p?.promoted;
  const rollback = p?.rollback;
  return optionalCondition(
    conditions,
    'Promoted',
    rollback
      ? { status: 'True', reason: 'RolledBack', message: `pinned to release ${rollback.to} by ${rollback.by} at ${rollback.at}, until the next promotion` }
      : promoted
        ? { status: 'True', reason: 'Promoted', message: `release ${promoted.release} from ${promoted.from} at ${promoted.at}${promoted.approvedBy ? `, approved by ${promoted.approvedBy}` : ''}` }
        : undefined,
    o.now,
  );
}

/** A condition present only while it holds (set, keeping its transition time), removed otherwise. */
function optionalCondition(conditions: Condition[], type: string, next: Omit<Condition, 'lastTransitionTime' | 'type'> | undefined, now: Date): Condition[] {
  return next ? setCondition(conditions, { type, ...next }, now) : conditions.filter((c) => c.type !== type);
}

/** A status for an environment the controller cannot work on (invalid spec, missing group). */
export function blockedStatus(
  previous: EnvironmentStatus | undefined,
  phase: 'Failed' | 'Degraded',
  reason: string,
  message: string,
  generation: number,
  now: Date,
): EnvironmentStatus {
  const conditions = setCondition(previous?.conditions ?? [], { type: 'Ready', status: 'False', reason, message }, now);
  return {
    observedGeneration: generation,
    phase,
    conditions,
    nodes: previous?.nodes ?? [],
    services: previous?.services ?? {},
    ...(previous?.jobs ? { jobs: previous.jobs } : {}),
    firstObservedAt: firstObservedAt(previous, now).toISOString(),
    ...(previous?.images ? { images: previous.images } : {}),
    ...(previous?.jobImages ? { jobImages: previous.jobImages } : {}),
    ...(previous?.release ? { release: previous.release } : {}),
    ...(previous?.history ? { history: previous.history } : {}),
    ...(previous?.promoted ? { promoted: previous.promoted } : {}),
    ...(previous?.rollback ? { rollback: previous.rollback } : {}),
    updatedAt: now.toISOString(),
  };
}

/** Equal apart from timestamps: skip the etcd write (and the watch traffic it causes). */
export function sameStatus(a: EnvironmentStatus | undefined, b: EnvironmentStatus): boolean {
  if (!a) return false;
  const strip = (s: EnvironmentStatus) => JSON.stringify({ ...s, updatedAt: '' });
  return strip(a) === strip(b);
}
