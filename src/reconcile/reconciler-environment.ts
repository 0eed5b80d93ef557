import type { Logger } from 'pino';
import { InvalidInputError, InvalidStoredResourceError, routeUpstream, setCondition, type Environment, type EnvironmentStatus, type ServiceStatus } from '../api/index.js';
import { KeyedCount, PhaseCount } from '../metrics/phase-count.js';
import type { BerthMetrics } from '../metrics/registry.js';
import type { SwarmApi } from '../swarm/api.js';
import type { SwarmSnapshot } from '../swarm/model.js';
import { LABEL_SERVICE, swarmServiceName } from '../swarm/labels.js';
import { readSnapshot } from '../swarm/snapshot.js';
import { InstallationSwarm } from '../swarm/installation-swarm.js';
import { probeEndpoints, reconcileBlueGreenService, type BlueGreenOutcome, type ProbeFn, type ProbeResult } from './bluegreen/index.js';
import { resolveImages } from './releases/resolve.js';
import type { PushedDigest } from './releases/pinning.js';
import { activeSpecRollback, mayHaveRollback, withRollback } from './releases/rollback.js';
import { httpVerify, runPromotion, type VerifyFn } from './releases/promote.js';
import { blockedStatus, environmentStatus, expiresAt, firstObservedAt, sameStatus, serviceStatus } from './env-status.js';
import {
  describeAction,
  ownedServices,
  planEnvironment,
  planEnvironmentRemoval,
  planNodeClaims,
  planRebalances,
  rolledBackUpdates,
  tasksPerNode,
  withRebalanceReplicas,
  zoneLabelOf,
  type Action,
  type RebalanceDecision,
} from './planner/index.js';
import { decideOrphan, ORPHAN_HOLDS, ORPHANED, orphanedCondition, withoutOrphaned, type OrphanHold } from './orphans.js';
import { ownedSnapshot, type Ownership } from './ownership.js';
import type { GcReleases, ImageResolver, ImageTagger, JobRequestStore, PromotionStore, ProxyAckReader, ReleaseRequestReader, ResourceDeleter, ResourceReader, Route, RouteOwner, RouteWriter, StatusWriter } from './ports.js';
import { forgetJobMetrics, reconcileJobs } from './jobs/reconcile-jobs.js';
import { missingObjectsMessage, SwarmObjectCheck } from './swarm-objects.js';
import type { SwarmObjectLookup } from '../swarm/api.js';
import { SwarmObjectMissingError } from '../swarm/object-ids.js';
import { TerminalError, type ReconcileResult } from '../runtime/handler.js';

export interface EnvironmentReconcilerDeps {
  swarm: SwarmApi;
  /** This installation's id (etcd `<prefix>/installation`): only objects labelled with it are changed. */
  installation: string;
  resources: ResourceReader & ResourceDeleter;
  status: StatusWriter;
  routes: RouteWriter;
  promotions: PromotionStore;
  gc: GcReleases;
  log: Logger;
  metrics?: BerthMetrics;
  now?: () => Date;
  /** While converging, look again this often: task state changes on workers raise no event. */
  pollMs?: number;
  /** An environment that cannot be worked on (invalid, group missing) is re-checked this often. */
  blockedRequeueMs?: number;
  /** The pre-promotion check of a new colour's endpoints (default: HTTP GET / on each). */
  probe?: ProbeFn;
  /** `berth proxy` acknowledgements (default: none registered, as with confd). */
  proxies?: ProxyAckReader;
  /** `--proxy-wait`: how long an unacknowledging proxy may hold a drain (default 5 min). */
  proxyWaitMs?: number;
  /** How long the objects of an environment whose key vanished without a mark are kept (default 60 s). */
  orphanGraceMs?: number;
  /** A deletion held by the brake is looked at again this often (a `berth gc --confirm` raises no event). */
  orphanRecheckMs?: number;
  /** `berth run` requests (default: none). */
  jobRequests?: JobRequestStore;
  /** While a job's run is going, look again this often (default 1 s). */
  jobPollMs?: number;
  /** Resolves image tags to digests; without one, images run as the spec writes them. */
  images?: ImageResolver;
  /** Registry notifications: the digest last pushed under a tag, to re-resolve a tracked tag before its period ends. */
  pushedDigest?: PushedDigest;
  /** An environment held by a tag that could not be resolved asks the registry again this often. */
  registryRetryMs?: number;
  /** spec.promotion: `berth approve` / `berth rollback` requests (default: none). */
  releases?: ReleaseRequestReader;
  /** spec.promotion: the verify check on the upstream's route (default: HTTP GET). */
  verify?: VerifyFn;
  /** spec.promotion.markTag: writes the tag to the registry. */
  tagger?: ImageTagger;
  /** spec.promotion: the upstream is looked at again this often (its releases raise no event here). */
  promotionPollMs?: number;
  /** Finds the Swarm secrets and configs services name; without one, they are not checked before planning. */
  swarmObjects?: SwarmObjectLookup;
}

/** A service whose route upstream another owner holds: nothing of that route is touched. */
export interface RouteConflict {
  service: string;
  upstream: string;
  owner: string;
}

/** Why an environment's spec cannot be acted on (reportBlocked). */
interface Blocked {
  /** The Ready condition's reason. */
  reason: string;
  message: string;
  /** The observedGeneration to report; by default the one already reported. */
  generation?: number;
  /** A condition of its own besides Ready (e.g. ImageUnresolved). */
  condition?: { type: string; reason: string };
}

/**
 * Level-triggered reconcile of one environment: read the spec, its group and the Swarm fresh,
 * plan, apply idempotently, then write status and routes. Safe to run any number of times,
 * and after a crash at any point: everything it does is derived from what it reads.
 */
export class EnvironmentReconciler {
  private readonly d: Required<Omit<EnvironmentReconcilerDeps, 'metrics' | 'proxyWaitMs' | 'images' | 'tagger' | 'pushedDigest' | 'swarmObjects'>> &
    Pick<EnvironmentReconcilerDeps, 'metrics' | 'proxyWaitMs' | 'images' | 'tagger' | 'pushedDigest'>;
  private readonly objects: SwarmObjectCheck | undefined;
  /** Last pre-promotion probe per `<env>/<service>`: the only state kept between reconciles. */
  private readonly probes = new Map<string, ProbeResult>();
  /** berth_environments{phase}, as this reconciler last decided each environment's phase. */
  private readonly phases: PhaseCount | undefined;
  /** The etcd revision of each environment's invalid spec already reported (reportInvalid). */
  private readonly reportedInvalid = new Map<string, string>();
  /** The release each environment last reported in berth_release_info. */
  private readonly releases = new Map<string, string>();
  /** Route conflicts per environment, summed into berth_route_conflicts. */
  private readonly conflicts = new Map<string, number>();
  /** berth_deletions_held{reason}: the orphans this reconciler holds, by why. */
  private readonly held: KeyedCount<OrphanHold> | undefined;

  constructor(deps: EnvironmentReconcilerDeps) {
    this.phases = deps.metrics && new PhaseCount(deps.metrics.environments);
    this.held = deps.metrics && new KeyedCount(deps.metrics.deletionsHeld, 'reason', ORPHAN_HOLDS);
    this.objects = deps.swarmObjects && new SwarmObjectCheck(deps.swarmObjects);
    const now = deps.now ?? (() => new Date());
    this.d = {
      now,
      pollMs: 2_000,
      blockedRequeueMs: 30_000,
      orphanGraceMs: 60_000,
      orphanRecheckMs: 5_000,
      probe: (color, endpoints) => probeEndpoints(color, endpoints, { now }),
      proxies: { listProxies: async () => [] },
      jobRequests: NO_JOB_REQUESTS,
      jobPollMs: 1_000,
      registryRetryMs: 10_000,
      promotionPollMs: 5_000,
      verify: httpVerify,
      releases: { readApproval: async () => undefined, readRollback: async () => undefined, clearReleaseRequests: async () => undefined },
      ...deps,
      // Every write of a reconcile carries the installation label and spares foreign objects.
      swarm: new InstallationSwarm(deps.swarm, deps.installation),
    };
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    try {
      return await this.reconcilePass(name);
    } catch (err) {
      // A secret or config gone between the check and the write: the next pass checks again.
      if (err instanceof SwarmObjectMissingError) this.objects?.forget(name);
      throw err;
    }
  }

  private async reconcilePass(name: string): Promise<ReconcileResult> {
    const log = this.d.log.child({ key: `env/${name}` });
    let env: Environment | undefined;
    try {
      env = await this.d.resources.getEnvironment(name);
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      return this.reportInvalid(name, err);
    }
    this.reportedInvalid.delete(name);
    if (!env) return this.orphaned(name, log);
    // The environment is in this installation's etcd: its unlabelled objects (older berth) are adopted.
    const own: Ownership = { installation: this.d.installation, adoptUnlabelled: true };
    if (env.metadata.deletionTimestamp) return this.finalize(name, own, log);

    let previous = await this.d.status.getEnvironmentStatus(name);
    const exp = expiresAt(env, firstObservedAt(previous, this.d.now()));
    if (exp && exp.getTime() <= this.d.now().getTime()) {
      log.info({ expiresAt: exp.toISOString() }, 'ttl expired: deleting environment');
      await this.d.resources.markEnvironmentDeleted(name);
      return this.finalize(name, own, log);
    }

    const group = await this.d.resources.getGroup(env.spec.group);
    previous = await this.keyIsBack(name, previous, log);
    if (!group) {
      const message = `environmentgroup "${env.spec.group}" not found`;
      await this.reportBlocked(name, previous, { reason: 'GroupNotFound', message, generation: env.metadata.generation ?? 0 }, log);
      return { requeueAfterMs: this.d.blockedRequeueMs };
    }

    // The upstream's proven release replaces the images of the services it runs (spec.promotion).
    const promotion = await runPromotion(env, previous, {
      status: this.d.status,
      requests: this.d.releases,
      verify: this.d.verify,
      ...(this.d.tagger ? { tagger: this.d.tagger } : {}),
      ...(this.d.metrics ? { metrics: this.d.metrics } : {}),
      log,
      now: this.d.now,
      pollMs: this.d.promotionPollMs,
    });
    if (promotion) env = promotion.env;
    // Without spec.promotion, `berth rollback` pins an earlier release until the spec's images change.
    const pin = !promotion && mayHaveRollback(previous) ? activeSpecRollback(env, await this.d.releases.readRollback(name)) : undefined;
    if (pin) env = withRollback(env, pin);
    // Tags become digests next: everything below acts on the pinned spec.
    const pinned = await resolveImages(env, previous, this.d.images, this.d.now(), log, this.d.pushedDigest);
    if (pinned.blocking.length > 0) {
      const message = pinned.blocking.map((b) => `${b.service}: ${b.message}`).join('; ');
      await this.reportBlocked(name, previous, { reason: 'ImageUnresolved', message, condition: { type: 'ImageUnresolved', reason: 'RegistryLookupFailed' } }, log);
      return { requeueAfterMs: this.d.registryRetryMs };
    }
    env = pinned.env;
    const missing = await this.objects?.missing(env);
    if (missing?.length) {
      const message = missingObjectsMessage(missing);
      await this.reportBlocked(name, previous, { reason: 'SwarmObjectMissing', message, condition: { type: 'SwarmObjectMissing', reason: 'NotFound' } }, log);
      return { requeueAfterMs: this.d.blockedRequeueMs };
    }

    let snapshot = await this.snapshot(name, own);
    const rolledBackBefore = rolledBackUpdates(env, ownedServices(name, snapshot.services), previous);
    // A service whose tasks are being spread runs one replica more while a task moves.
    // One node-claim plan for both: rebalancing changes replicas, never the nodes.
    const nodePlan = planNodeClaims(name, env.spec.nodes, group, snapshot, own, zoneLabelOf(env));
    const rebalances = planRebalances(env, snapshot, nodePlan.held, previous?.services, rolledBackBefore, this.d.now());
    const desired = withRebalanceReplicas(env, rebalances);
    const plan = planEnvironment(desired, group, snapshot, own, rolledBackBefore, nodePlan);
    const claims = plan.actions.flatMap((a) => (a.kind === 'claimNode' ? [a.nodeId] : []));
    const nodes = snapshot.nodes;
    for (const id of claims) nodes.assumeClaim(id, name);
    try {
      await this.apply(plan.actions, log);
      if (plan.actions.length > 0) snapshot = await this.snapshot(name, own);
    } finally {
      // A claim that landed was read back claimed just above, which ended its assumption.
      for (const id of claims) nodes.forgetAssumed(id);
    }

    // Blue-green services: their Swarm services and routes move only as bluegreen/ decides.
    const { own: existingRoutes, conflicts } = await this.ownRoutes(env, previous);
    const conflicted = new Set(conflicts.map((c) => c.service));
    const bgPass = await this.reconcileBlueGreen(desired, snapshot, existingRoutes, previous, conflicted, log);
    const { blueGreen } = bgPass;
    let { persisted } = bgPass;
    const blueGreenChanged = [...blueGreen.values()].some((o) => o.changedSwarm);
    const changed = plan.actions.length > 0 || blueGreenChanged;
    if (blueGreenChanged) snapshot = await this.snapshot(name, own);

    // Jobs: a job's state is persisted before any of its runs is started (reconcile/jobs/).
    const jobs = persisted
      ? await reconcileJobs(env, snapshot, persisted.jobs, async (next) => {
          persisted = { ...persisted!, jobs: next, updatedAt: this.d.now().toISOString() };
          await this.d.status.putEnvironmentStatus(name, persisted);
        }, { swarm: this.d.swarm, requests: this.d.jobRequests, log, metrics: this.d.metrics, now: this.d.now, pollMs: this.d.jobPollMs })
      : // No status yet: the first pass writes one; jobs start from it, a moment later.
        { jobs: {}, requeueAfterMs: Object.keys(env.spec.jobs).length > 0 ? this.d.jobPollMs : undefined };

    const rolledBack = rolledBackUpdates(env, ownedServices(name, snapshot.services), previous);
    const services: Record<string, ServiceStatus> = {};
    const routes: Route[] = [];
    for (const [svc, spec] of Object.entries(env.spec.services)) {
      const bg = blueGreen.get(svc);
      const swarmName = bg?.reportedServiceName ?? swarmServiceName(name, svc);
      const observed = snapshot.services.find((s) => s.name === swarmName);
      const tasks = observed ? snapshot.tasks.filter((t) => t.serviceId === observed.id) : [];
      let status = serviceStatus(spec, observed, tasks, snapshot.nodes);
      if (bg) {
        status = withBlueGreen(status, bg);
        if (bg.route) status.route = { upstream: bg.route.upstream, servers: bg.route.servers, ...(bg.route.color ? { color: bg.route.color } : {}) };
      } else if (spec.ports.length > 0 && !conflicted.has(svc)) {
        const route: Route = { upstream: routeUpstream(name, svc, spec), servers: status.endpoints, owner: { env: name, service: svc } };
        routes.push(route);
        status.route = { upstream: route.upstream, servers: route.servers };
      }
      if (rolledBack[svc]) status.rolledBack = rolledBack[svc];
      if (observed) status.tasksPerNode = tasksPerNode(tasks, snapshot.nodes);
      const rebalance = rebalances.get(svc)?.record;
      if (rebalance) status.rebalance = rebalance;
      services[svc] = status;
    }
    const keep = new Set([...blueGreen].flatMap(([, o]) => (o.route ? [o.route.upstream] : [])));
    conflicts.push(...(await this.publishRoutes(name, routes, log, existingRoutes, keep)));
    this.observeConflicts(name, conflicts, log);
    const lagging = [...blueGreen].flatMap(([svc, o]) => (o.lagging ? [`${svc}: ${o.lagging.join(', ')}`] : []));

    const heldNodes = plan.nodes.held.flatMap((h) => snapshot.nodes.get(h.id) ?? []);
    const cutover = [...blueGreen.values()].map((o) => ({ state: o.state, message: o.message }));
    const status = environmentStatus({ env, previous: persisted, nodes: plan.nodes, heldNodes, services, jobs: jobs.jobs, changed, cutover, routeConflicts: conflicts, laggingProxies: lagging, images: pinned.images, jobImages: pinned.jobImages, staleImages: pinned.stale, promotion, pinnedRollback: pin, now: this.d.now() });
    if (!sameStatus(persisted, status)) await this.d.status.putEnvironmentStatus(name, status);
    this.observe(name, status.nodes.length, services, status.release?.id);
    this.phases?.set(name, status.phase);
    if (previous?.phase !== status.phase) log.info({ phase: status.phase, from: previous?.phase }, 'phase changed');
    this.observeRebalances(name, rebalances, log);

    // A service held one replica over its spec (a failed move waiting for Swarm to place its extra
    // task elsewhere) is looked at like a converging one: task changes on workers raise no event.
    const holding = [...rebalances].some(([svc, d]) => d.replicas !== env.spec.services[svc]?.replicas);
    return earliest(this.requeueFor(status, services, exp), holding ? this.d.pollMs : undefined, jobs.requeueAfterMs, pinned.nextResolveMs, promotion?.requeueAfterMs, ...[...blueGreen.values()].map((o) => o.requeueAfterMs));
  }

  /**
   * A stored spec that does not pass the schema: the services keep running as they are, the
   * status says Failed/InvalidSpec, and the reconcile fails terminally (logged once by the
   * runtime, never retried) — once per revision of the bad value. Later passes over the same
   * revision (one per Docker event of its services, or a resync) change and log nothing; the
   * write that fixes the value raises a watch event.
   */
  private async reportInvalid(name: string, err: InvalidInputError): Promise<ReconcileResult> {
    const revision = err instanceof InvalidStoredResourceError ? err.revision : undefined;
    if (revision !== undefined && this.reportedInvalid.get(name) === revision) return {};
    const previous = await this.d.status.getEnvironmentStatus(name);
    const status = blockedStatus(previous, 'Failed', 'InvalidSpec', err.message, previous?.observedGeneration ?? 0, this.d.now());
    if (!sameStatus(previous, status)) await this.d.status.putEnvironmentStatus(name, status);
    this.phases?.set(name, 'Failed');
    if (revision !== undefined) this.reportedInvalid.set(name, revision);
    throw new TerminalError(`invalid environment spec${revision !== undefined ? ` (etcd revision ${revision})` : ''}: ${err.message}`, { cause: err });
  }

  /**
   * The spec cannot be acted on yet: its group, an image's digest (registry unreachable, unknown
   * tag) or a secret or config it names is missing. Nothing of the environment changes, not even
   * what could be done; the status says why (phase Degraded, Ready false with `reason`, and the
   * condition named in `condition`), written and logged when it changed. observedGeneration stays
   * where it was unless `generation` says otherwise: berth has not acted on this spec.
   */
  private async reportBlocked(name: string, previous: EnvironmentStatus | undefined, why: Blocked, log: Logger): Promise<void> {
    const now = this.d.now();
    const blocked = blockedStatus(previous, 'Degraded', why.reason, why.message, why.generation ?? previous?.observedGeneration ?? 0, now);
    const status = why.condition
      ? { ...blocked, conditions: setCondition(blocked.conditions, { type: why.condition.type, status: 'True', reason: why.condition.reason, message: why.message }, now) }
      : blocked;
    this.phases?.set(name, status.phase);
    if (sameStatus(previous, status)) return;
    await this.d.status.putEnvironmentStatus(name, status);
    log.warn({ phase: status.phase, reason: why.reason, err: why.message }, 'blocked: nothing changed');
  }

  /**
   * Runs each blue-green service's next steps. Returns their outcomes and the status as last
   * written: a cutover's history is persisted at once, since it decides when the old colour may go.
   */
  private async reconcileBlueGreen(
    env: Environment,
    snapshot: SwarmSnapshot,
    existingRoutes: Route[],
    previous: EnvironmentStatus | undefined,
    conflicted: Set<string>,
    log: Logger,
  ): Promise<{ blueGreen: Map<string, BlueGreenOutcome>; persisted: EnvironmentStatus | undefined }> {
    const name = env.metadata.name;
    const blueGreen = new Map<string, BlueGreenOutcome>();
    let persisted = previous;
    const owned = ownedServices(name, snapshot.services);
    for (const [svc, spec] of Object.entries(env.spec.services)) {
      // A blue-green service whose upstream is another's has nowhere to cut over: left alone.
      if (spec.strategy.type !== 'blueGreen' || conflicted.has(svc)) continue;
      const upstream = routeUpstream(name, svc, spec);
      const outcome = await reconcileBlueGreenService(
        {
          env: name,
          service: svc,
          spec,
          owned: owned.filter((s) => s.labels[LABEL_SERVICE] === svc),
          snapshot,
          route: existingRoutes.find((r) => r.upstream === upstream && r.owner?.service === svc),
          previous: previous?.services[svc],
        },
        {
          swarm: this.d.swarm,
          routes: this.d.routes,
          promotions: this.d.promotions,
          proxies: this.d.proxies,
          proxyWaitMs: this.d.proxyWaitMs,
          probe: this.d.probe,
          probes: this.probes,
          log,
          metrics: this.d.metrics,
          now: this.d.now,
          persist: async (service, patch) => {
            if (!persisted) return;
            const current: ServiceStatus = persisted.services[service] ?? { desiredReplicas: spec.replicas, runningReplicas: 0, image: spec.image, endpoints: [] };
            persisted = { ...persisted, services: { ...persisted.services, [service]: withBlueGreen(current, patch) }, updatedAt: this.d.now().toISOString() };
            await this.d.status.putEnvironmentStatus(name, persisted);
          },
        },
      );
      blueGreen.set(svc, outcome);
    }
    return { blueGreen, persisted };
  }

  /**
   * The routes this environment may own: those its spec names and those its last status
   * published (a route the spec renamed or dropped, to delete). Read per upstream, so a
   * reconcile costs the same whatever the number of environments; only the removal of a whole
   * environment lists every route. A route the spec names that another owner holds is a conflict.
   */
  private async ownRoutes(env: Environment, previous: EnvironmentStatus | undefined): Promise<{ own: Route[]; conflicts: RouteConflict[] }> {
    const name = env.metadata.name;
    const wanted = Object.entries(env.spec.services)
      .filter(([, spec]) => spec.ports.length > 0 || spec.strategy.type === 'blueGreen')
      .map(([svc, spec]) => ({ service: svc, upstream: routeUpstream(name, svc, spec) }));
    const upstreams = wanted.map((w) => w.upstream);
    for (const s of Object.values(previous?.services ?? {})) if (s.route) upstreams.push(s.route.upstream);
    const stored = await this.d.routes.getRoutes(upstreams);
    const conflicts: RouteConflict[] = [];
    for (const w of wanted) {
      const owner = stored.find((r) => r.upstream === w.upstream)?.owner;
      if (owner && (owner.env !== name || owner.service !== w.service)) conflicts.push({ ...w, owner: `${owner.env}/${owner.service}` });
    }
    return { own: stored.filter((r) => r.owner?.env === name), conflicts };
  }

  /** Logs what each rebalance did this pass and counts those that ended (once their status is written). */
  private observeRebalances(env: string, decisions: Map<string, RebalanceDecision>, log: Logger): void {
    for (const [service, d] of decisions) {
      if (!d.event) continue;
      const fields = { service, replicas: d.replicas, moves: d.record?.moves, ...(d.result ? { result: d.result } : {}) };
      if (d.result === 'unbalanced') log.warn(fields, `rebalance stopped: ${d.event}`);
      else log.info(fields, `rebalance: ${d.event}`);
      if (d.result) this.d.metrics?.rebalancesTotal.inc({ env, service, result: d.result });
    }
  }

  private observeConflicts(env: string, conflicts: RouteConflict[], log: Logger): void {
    if ((this.conflicts.get(env) ?? 0) === 0 && conflicts.length > 0) {
      for (const c of conflicts) log.warn({ service: c.service, upstream: c.upstream, owner: c.owner }, 'route conflict: the upstream belongs to another owner; not routed');
    }
    if (conflicts.length > 0) this.conflicts.set(env, conflicts.length);
    else this.conflicts.delete(env);
    this.d.metrics?.routeConflicts.set([...this.conflicts.values()].reduce((a, b) => a + b, 0));
  }

  private requeueFor(status: EnvironmentStatus, services: Record<string, ServiceStatus>, exp: Date | undefined): number | undefined {
    if (status.phase === 'Ready') return exp ? Math.max(1_000, exp.getTime() - this.d.now().getTime()) : undefined;
    if (status.phase === 'Degraded' && Object.values(services).every((s) => s.runningReplicas === s.desiredReplicas)) return this.d.blockedRequeueMs;
    return this.convergingPoll(status);
  }

  /**
   * How soon a converging environment is looked at again: half the time it has been converging
   * (since its Ready condition last changed), between half of `pollMs` and `pollMs`. Most tasks
   * run within a second or two, and the environment is then reported Ready that much sooner.
   * Not sooner than 1 s (at the default 2 s): the Swarm cache lists an unsettled service's tasks
   * again when its list is a second old, and listing them more often would put a Docker call
   * before the first write of every reconcile of a converging environment (a spec change's too).
   */
  private convergingPoll(status: EnvironmentStatus): number {
    const since = Date.parse(status.conditions.find((c) => c.type === 'Ready')?.lastTransitionTime ?? '');
    const converging = Number.isNaN(since) ? this.d.pollMs : this.d.now().getTime() - since;
    return Math.min(this.d.pollMs, Math.max(this.d.pollMs / 2, converging / 2));
  }

  /** What the reconcile of `env` sees of the Swarm: every node, and only the services it owns. */
  private async snapshot(env: string, own: Ownership): Promise<SwarmSnapshot> {
    return ownedSnapshot(await readSnapshot(this.d.swarm, env), env, own);
  }

  /**
   * The environment's status as read; when it carried the orphan record, the key came back
   * (re-applied, or restored): the record goes, and the running services are adopted as they are.
   */
  private async keyIsBack(name: string, previous: EnvironmentStatus | undefined, log: Logger): Promise<EnvironmentStatus | undefined> {
    this.held?.forget(name);
    if (!previous || !previous.conditions.some((c) => c.type === ORPHANED)) return previous;
    const status = { ...withoutOrphaned(previous), updatedAt: this.d.now().toISOString() };
    await this.d.status.putEnvironmentStatus(name, status);
    await this.d.gc.clearGcRelease(name);
    log.info('environment key is back: held deletion cancelled, its objects adopted');
    return status;
  }

  /** Explicit deletion (`berth delete`, ttl): remove what the environment owned, then its keys. */
  private async finalize(name: string, own: Ownership, log: Logger): Promise<ReconcileResult> {
    this.objects?.forget(name);
    const snapshot = await this.snapshot(name, own);
    const routes = (await this.d.routes.listRoutes()).filter((r) => r.owner?.env === name);
    await this.remove(name, planEnvironmentRemoval(name, snapshot, own), routes, await this.d.status.getEnvironmentStatus(name), log);
    await this.d.resources.deleteEnvironment(name);
    return {};
  }

  /**
   * The key is gone without a deletion mark. What this installation still owns of the
   * environment stays for the orphan grace, and past it while the brake holds (orphans.ts);
   * unlabelled objects and routes count as owned only when this installation's status of the
   * environment says it ran it. Nothing owned: only the leftover keys go.
   */
  private async orphaned(name: string, log: Logger): Promise<ReconcileResult> {
    const previous = await this.d.status.getEnvironmentStatus(name);
    const own: Ownership = { installation: this.d.installation, adoptUnlabelled: previous !== undefined };
    const snapshot = await this.snapshot(name, own);
    const actions = planEnvironmentRemoval(name, snapshot, own);
    const routes = previous ? (await this.d.routes.listRoutes()).filter((r) => r.owner?.env === name) : [];
    if (actions.length === 0 && routes.length === 0) {
      this.held?.forget(name);
      if (previous) await this.remove(name, [], [], previous, log);
      return {};
    }

    const now = this.d.now();
    const held = orphanedCondition(previous);
    const [released, envNames, statuses] = await Promise.all([
      this.d.gc.isGcReleased(name),
      this.d.resources.listEnvironmentNames(),
      this.d.status.listEnvironmentStatuses(),
    ]);
    const present = new Set(envNames);
    const orphans = new Set([name, ...[...statuses].filter(([n, s]) => !present.has(n) && orphanedCondition(s)).map(([n]) => n)]);
    const decision = decideOrphan({
      since: held ? new Date(held.lastTransitionTime) : now,
      now,
      graceMs: this.d.orphanGraceMs,
      released,
      environments: present.size,
      orphans: orphans.size,
    });
    if (decision.delete) {
      log.warn({ why: decision.why, services: snapshot.services.map((s) => s.name) }, 'orphaned environment: deleting what it owned');
      await this.remove(name, actions, routes, previous, log);
      return {};
    }

    const base: EnvironmentStatus = previous ?? { observedGeneration: 0, phase: 'Degraded', conditions: [], nodes: [], services: {}, updatedAt: now.toISOString() };
    const status = { ...base, conditions: setCondition(base.conditions, { type: ORPHANED, status: 'True', reason: decision.hold, message: decision.message }, now), updatedAt: now.toISOString() };
    if (!sameStatus(previous, status)) await this.d.status.putEnvironmentStatus(name, status);
    this.held?.set(name, decision.hold);
    if (held?.reason !== decision.hold) {
      log.warn({ hold: decision.hold, services: snapshot.services.map((s) => s.name), nodes: actions.filter((a) => a.kind === 'releaseNode').length }, `orphaned environment: deletion held: ${decision.message}`);
    }
    return { requeueAfterMs: decision.recheckAfterMs ?? this.d.orphanRecheckMs };
  }

  /** Removes what the environment owned (services, node claims, routes), then its status and requests. */
  private async remove(name: string, actions: Action[], routes: Route[], previous: EnvironmentStatus | undefined, log: Logger): Promise<void> {
    if (actions.length > 0 && previous && previous.phase !== 'Terminating') {
      await this.d.status.putEnvironmentStatus(name, { ...previous, phase: 'Terminating', updatedAt: this.d.now().toISOString() });
    }
    await this.apply(actions, log);
    await this.publishRoutes(name, [], log, routes);
    this.observeConflicts(name, [], log);
    await this.d.promotions.clearPromotions(name);
    await this.d.gc.clearGcRelease(name);
    await this.d.jobRequests.clearJobRequests(name);
    await this.d.releases.clearReleaseRequests(name);
    if (previous) await this.d.status.deleteEnvironmentStatus(name);
    this.forgetMetrics(name, previous ? Object.keys(previous.services) : [], previous ? Object.keys(previous.jobs ?? {}) : []);
    this.phases?.forget(name);
    this.held?.forget(name);
    if (actions.length > 0) log.info('environment removed');
  }

  /**
   * Applies the plan in its steps: claims (so new tasks can schedule), then services, then
   * releases. The actions of one step touch different objects, so they go out together: a
   * reconcile then costs a few round trips, not one per action.
   */
  private async apply(actions: Action[], log: Logger): Promise<void> {
    const step = (a: Action) => (a.kind === 'claimNode' || a.kind === 'adoptNode' ? 0 : a.kind === 'releaseNode' ? 2 : 1);
    for (const s of [0, 1, 2]) {
      await settleAll(actions.filter((a) => step(a) === s).map((a) => this.applyOne(a, log)));
    }
  }

  private async applyOne(a: Action, log: Logger): Promise<void> {
    log.info({ action: a.kind, target: describeAction(a), ...('reason' in a ? { reason: a.reason } : {}) }, describeAction(a));
    switch (a.kind) {
      case 'claimNode':
      case 'adoptNode':
      case 'releaseNode':
        return this.d.swarm.updateNodeLabels(a.nodeId, a.version, a.labels);
      case 'createService':
        await this.d.swarm.createService(a.spec);
        return;
      case 'updateService':
        return this.d.swarm.updateService(a.id, a.version, a.spec);
      case 'removeService':
        return this.d.swarm.removeService(a.id);
    }
  }

  /**
   * Makes the env's routes exactly `routes` plus `keep` (blue-green routes, written only by their
   * cutovers): write what changed, delete what it no longer has. `existing`: the env's stored routes.
   * Every write checks the owner: a route another owner took meanwhile is returned as a conflict.
   */
  private async publishRoutes(env: string, routes: Route[], log: Logger, existing: Route[], keep = new Set<string>()): Promise<RouteConflict[]> {
    const conflicts: RouteConflict[] = [];
    const changed = routes.filter((r) => {
      const cur = existing.find((e) => e.upstream === r.upstream);
      return !(cur && sameRoute(cur, r));
    });
    const writes = (async () => {
      if (changed.length === 0) return;
      const refused = await this.d.routes.setRoutes(changed.map((r) => ({ ...r, owner: r.owner! })));
      const published: { upstream: string; servers: string[] }[] = [];
      for (const r of changed) {
        const err = refused.find((e) => e.upstream === r.upstream);
        if (err) conflicts.push({ service: r.owner!.service, upstream: r.upstream, owner: err.owner });
        else published.push({ upstream: r.upstream, servers: r.servers });
      }
      // One line for the routes of one write: a cold start of thousands logged one per route.
      if (published.length > 0) log.info({ routes: published }, 'routes published');
    })();
    const deletes = existing
      .filter((e) => !keep.has(e.upstream) && !routes.some((r) => r.upstream === e.upstream))
      .map(async (e) => {
        await this.d.routes.deleteRoute(e.upstream, e.owner as RouteOwner);
        log.info({ upstream: e.upstream }, 'route deleted');
      });
    await settleAll([writes, ...deletes]);
    return conflicts;
  }

  private observe(env: string, nodes: number, services: Record<string, ServiceStatus>, release: string | undefined): void {
    const m = this.d.metrics;
    if (!m) return;
    const before = this.releases.get(env);
    if (before !== release) {
      if (before) m.releaseInfo.remove({ env, release: before });
      if (release) m.releaseInfo.set({ env, release }, 1);
      if (release) this.releases.set(env, release);
      else this.releases.delete(env);
    }
    m.environmentNodes.set({ env }, nodes);
    for (const [service, s] of Object.entries(services)) {
      m.replicasDesired.set({ env, service }, s.desiredReplicas);
      m.replicasRunning.set({ env, service }, s.runningReplicas);
    }
  }

  private forgetMetrics(env: string, services: string[], jobs: string[]): void {
    const m = this.d.metrics;
    if (!m) return;
    m.environmentNodes.remove({ env });
    const release = this.releases.get(env);
    if (release) m.releaseInfo.remove({ env, release });
    this.releases.delete(env);
    for (const service of services) {
      m.replicasDesired.remove({ env, service });
      m.replicasRunning.remove({ env, service });
      for (const result of ['balanced', 'unbalanced', 'superseded']) m.rebalancesTotal.remove({ env, service, result });
    }
    for (const job of jobs) forgetJobMetrics(m, env, job);
  }
}

const NO_JOB_REQUESTS: JobRequestStore = { readJobRequests: async () => ({}), clearJobRequest: async () => {}, clearJobRequests: async () => {} };

/** The service status with the blue-green fields (active colour, pending attempt, cutover history). */
function withBlueGreen(status: ServiceStatus, bg: Pick<ServiceStatus, 'pending' | 'cutovers' | 'activeColor'>): ServiceStatus {
  const { activeColor: _a, pending: _p, cutovers: _c, ...rest } = status;
  return {
    ...rest,
    ...(bg.activeColor ? { activeColor: bg.activeColor } : {}),
    ...(bg.pending ? { pending: bg.pending } : {}),
    ...(bg.cutovers && bg.cutovers.length > 0 ? { cutovers: bg.cutovers } : {}),
  };
}

/** Waits for every one of `work`, then throws the first failure, if any (none is left running). */
async function settleAll(work: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/** The soonest of several requeue requests; undefined when none asks for one. */
function earliest(...ms: (number | undefined)[]): ReconcileResult {
  const defined = ms.filter((m): m is number => m !== undefined);
  return defined.length > 0 ? { requeueAfterMs: Math.max(0, Math.min(...defined)) } : {};
}

function sameRoute(a: Route, b: Route): boolean {
  return (
    JSON.stringify([...a.servers].sort()) === JSON.stringify([...b.servers].sort()) &&
    (a.color ?? '') === (b.color ?? '') &&
    a.owner?.service === b.owner?.service
  );
}
