import type { Logger } from 'pino';
import { InvalidInputError, routeUpstream, type Environment, type ServiceStatus } from '../api/index.js';
import type { BerthMetrics } from '../metrics/registry.js';
import type { SwarmApi } from '../swarm/api.js';
import { LABEL_SERVICE, swarmServiceName } from '../swarm/labels.js';
import { readSnapshot } from '../swarm/snapshot.js';
import { blockedStatus, environmentStatus, expiresAt, sameStatus, serviceStatus } from './env-status.js';
import { describeAction, ownedServices, planEnvironment, planEnvironmentRemoval, type Action } from './planner/index.js';
import type { ResourceDeleter, ResourceReader, Route, RouteWriter, StatusWriter } from './ports.js';
import { reconcileBlueGreenService } from './strategy-seam.js';
import type { ReconcileResult } from './workers.js';

export interface EnvironmentReconcilerDeps {
  swarm: SwarmApi;
  resources: ResourceReader & ResourceDeleter;
  status: StatusWriter;
  routes: RouteWriter;
  log: Logger;
  metrics?: BerthMetrics;
  now?: () => Date;
  /** While converging, look again this often: task state changes on workers raise no event. */
  pollMs?: number;
  /** An environment that cannot be worked on (invalid, group missing) is re-checked this often. */
  blockedRequeueMs?: number;
}

/**
 * Level-triggered reconcile of one environment: read the spec, its group and the Swarm fresh,
 * plan, apply idempotently, then write status and routes. Safe to run any number of times,
 * and after a crash at any point: everything it does is derived from what it reads.
 */
export class EnvironmentReconciler {
  private readonly d: Required<Omit<EnvironmentReconcilerDeps, 'metrics'>> & { metrics?: BerthMetrics };

  constructor(deps: EnvironmentReconcilerDeps) {
    this.d = { now: () => new Date(), pollMs: 2_000, blockedRequeueMs: 30_000, ...deps };
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const log = this.d.log.child({ key: `env/${name}` });
    let env: Environment | undefined;
    try {
      env = await this.d.resources.getEnvironment(name);
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      // Terminal: retrying cannot fix a bad spec; `berth apply` of a good one raises a watch event.
      log.warn({ err: err.message }, 'invalid environment spec');
      const previous = await this.d.status.getEnvironmentStatus(name);
      await this.d.status.putEnvironmentStatus(name, blockedStatus(previous, 'Failed', 'InvalidSpec', err.message, previous?.observedGeneration ?? 0, this.d.now()));
      return { requeueAfterMs: this.d.blockedRequeueMs };
    }
    if (!env) return this.finalize(name, log);

    const exp = expiresAt(env);
    if (exp && exp.getTime() <= this.d.now().getTime()) {
      log.info({ expiresAt: exp.toISOString() }, 'ttl expired: deleting environment');
      await this.d.resources.deleteEnvironment(name);
      return this.finalize(name, log);
    }

    const group = await this.d.resources.getGroup(env.spec.group);
    const previous = await this.d.status.getEnvironmentStatus(name);
    if (!group) {
      const message = `environmentgroup "${env.spec.group}" not found`;
      const status = blockedStatus(previous, 'Degraded', 'GroupNotFound', message, env.metadata.generation ?? 0, this.d.now());
      if (!sameStatus(previous, status)) await this.d.status.putEnvironmentStatus(name, status);
      log.warn(message);
      return { requeueAfterMs: this.d.blockedRequeueMs };
    }

    let snapshot = await readSnapshot(this.d.swarm);
    const plan = planEnvironment(env, group, snapshot);
    const actions = [...plan.actions];
    const blueGreen = new Map<string, { activeColor: 'blue' | 'green'; routedServiceName: string }>();
    const owned = ownedServices(name, snapshot.services);
    for (const [svc, spec] of Object.entries(env.spec.services)) {
      if (spec.strategy.type !== 'blueGreen') continue;
      const decision = await reconcileBlueGreenService({
        env: name,
        service: svc,
        spec,
        owned: owned.filter((s) => s.labels[LABEL_SERVICE] === svc),
        snapshot,
        now: this.d.now(),
      });
      actions.push(...decision.actions);
      blueGreen.set(svc, decision);
    }
    await this.apply(actions, log);
    if (actions.length > 0) snapshot = await readSnapshot(this.d.swarm);

    const nodesById = new Map(snapshot.nodes.map((n) => [n.id, n]));
    const services: Record<string, ServiceStatus> = {};
    const routes: Route[] = [];
    for (const [svc, spec] of Object.entries(env.spec.services)) {
      const bg = blueGreen.get(svc);
      const swarmName = bg?.routedServiceName ?? swarmServiceName(name, svc);
      const observed = snapshot.services.find((s) => s.name === swarmName);
      const tasks = observed ? snapshot.tasks.filter((t) => t.serviceId === observed.id) : [];
      const status = serviceStatus(spec, observed, tasks, nodesById);
      if (bg) status.activeColor = bg.activeColor;
      if (spec.ports.length > 0) {
        const route: Route = { upstream: routeUpstream(name, svc, spec), servers: status.endpoints, owner: { env: name, service: svc } };
        if (bg) route.color = bg.activeColor;
        routes.push(route);
        status.route = { upstream: route.upstream, servers: route.servers, ...(route.color ? { color: route.color } : {}) };
      }
      services[svc] = status;
    }
    await this.publishRoutes(name, routes, log);

    const heldNodes = snapshot.nodes.filter((n) => plan.nodes.held.some((h) => h.id === n.id));
    const status = environmentStatus({ env, previous, nodes: plan.nodes, heldNodes, services, changed: actions.length > 0, now: this.d.now() });
    if (!sameStatus(previous, status)) await this.d.status.putEnvironmentStatus(name, status);
    this.observe(name, status.nodes.length, services);
    if (previous?.phase !== status.phase) log.info({ phase: status.phase, from: previous?.phase }, 'phase changed');

    if (status.phase === 'Ready') return exp ? { requeueAfterMs: Math.max(1_000, exp.getTime() - this.d.now().getTime()) } : {};
    if (status.phase === 'Degraded' && Object.values(services).every((s) => s.runningReplicas === s.desiredReplicas)) {
      return { requeueAfterMs: this.d.blockedRequeueMs };
    }
    return { requeueAfterMs: this.d.pollMs };
  }

  /** The environment is gone from etcd: remove what it owned, then its status. */
  private async finalize(name: string, log: Logger): Promise<ReconcileResult> {
    const snapshot = await readSnapshot(this.d.swarm);
    const actions = planEnvironmentRemoval(name, snapshot);
    const previous = await this.d.status.getEnvironmentStatus(name);
    if (actions.length > 0 && previous && previous.phase !== 'Terminating') {
      await this.d.status.putEnvironmentStatus(name, { ...previous, phase: 'Terminating', updatedAt: this.d.now().toISOString() });
    }
    await this.apply(actions, log);
    await this.publishRoutes(name, [], log);
    if (previous) await this.d.status.deleteEnvironmentStatus(name);
    this.forgetMetrics(name, previous ? Object.keys(previous.services) : []);
    if (actions.length > 0) log.info('environment removed');
    return {};
  }

  private async apply(actions: Action[], log: Logger): Promise<void> {
    for (const a of actions) {
      log.info({ action: a.kind, target: describeAction(a), ...('reason' in a ? { reason: a.reason } : {}) }, describeAction(a));
      switch (a.kind) {
        case 'claimNode':
        case 'releaseNode':
          await this.d.swarm.updateNodeLabels(a.nodeId, a.version, a.labels);
          break;
        case 'createService':
          await this.d.swarm.createService(a.spec);
          break;
        case 'updateService':
          await this.d.swarm.updateService(a.id, a.version, a.spec);
          break;
        case 'removeService':
          await this.d.swarm.removeService(a.id);
          break;
      }
    }
  }

  /** Makes the env's routes exactly `routes`: write what changed, delete what it no longer has. */
  private async publishRoutes(env: string, routes: Route[], log: Logger): Promise<void> {
    const existing = (await this.d.routes.listRoutes()).filter((r) => r.owner?.env === env);
    for (const r of routes) {
      const cur = existing.find((e) => e.upstream === r.upstream);
      if (cur && sameRoute(cur, r)) continue;
      await this.d.routes.setRoute({ ...r, owner: r.owner! });
      log.info({ upstream: r.upstream, servers: r.servers }, 'route published');
    }
    for (const e of existing) {
      if (routes.some((r) => r.upstream === e.upstream)) continue;
      await this.d.routes.deleteRoute(e.upstream);
      log.info({ upstream: e.upstream }, 'route deleted');
    }
  }

  private observe(env: string, nodes: number, services: Record<string, ServiceStatus>): void {
    const m = this.d.metrics;
    if (!m) return;
    m.environmentNodes.set({ env }, nodes);
    for (const [service, s] of Object.entries(services)) {
      m.replicasDesired.set({ env, service }, s.desiredReplicas);
      m.replicasRunning.set({ env, service }, s.runningReplicas);
    }
  }

  private forgetMetrics(env: string, services: string[]): void {
    const m = this.d.metrics;
    if (!m) return;
    m.environmentNodes.remove({ env });
    for (const service of services) {
      m.replicasDesired.remove({ env, service });
      m.replicasRunning.remove({ env, service });
    }
  }
}

function sameRoute(a: Route, b: Route): boolean {
  return (
    JSON.stringify([...a.servers].sort()) === JSON.stringify([...b.servers].sort()) &&
    (a.color ?? '') === (b.color ?? '') &&
    a.owner?.service === b.owner?.service
  );
}
