import type { Logger } from 'pino';
import { routeUpstream, type ServiceSpec } from '../../api/index.js';
import type { BlueGreenState, Color, CutoverRecord, PendingAttempt, ServiceStatus } from '../../api/status.js';
import type { BerthMetrics } from '../../metrics/registry.js';
import type { SwarmApi } from '../../swarm/api.js';
import { LABEL_COLOR, swarmServiceName } from '../../swarm/labels.js';
import type { ObservedService, SwarmSnapshot } from '../../swarm/model.js';
import type { PromotionStore, ProxyAckReader, Route, RouteCutover, RouteWriter } from '../ports.js';
import { decideBlueGreen, type BlueGreenDecision, type ColorChange, type ProbeResult } from './decide.js';
import { appendCutover, observeCutover } from './history.js';

/** Decisions per reconcile at most: probe → cutover → drain-wait is three; a bound, not a target. */
const MAX_STEPS = 8;

export type ProbeFn = (color: Color, endpoints: string[]) => Promise<ProbeResult>;

export interface BlueGreenDeps {
  swarm: SwarmApi;
  routes: RouteWriter;
  promotions: PromotionStore;
  /** `berth proxy` acknowledgements: the old colour drains once they serve the switch. */
  proxies: ProxyAckReader;
  /** `--proxy-wait`: how long a proxy that does not acknowledge may hold a drain. */
  proxyWaitMs?: number | undefined;
  probe: ProbeFn;
  /** `<env>/<service>` → last probe result. The only in-memory state: losing it costs one probe. */
  probes: Map<string, ProbeResult>;
  log: Logger;
  metrics?: BerthMetrics | undefined;
  now: () => Date;
  /** Persists history/pending right after a cutover or abandon, before anything else can fail. */
  persist: (service: string, patch: Pick<ServiceStatus, 'pending' | 'cutovers' | 'activeColor'>) => Promise<void>;
}

export interface BlueGreenServiceInput {
  env: string;
  service: string;
  spec: ServiceSpec;
  /** Every Swarm service the environment owns for this berth service, of any colour. */
  owned: ObservedService[];
  snapshot: SwarmSnapshot;
  /** The route as stored in etcd (undefined: none yet). */
  route: Route | undefined;
  previous: ServiceStatus | undefined;
}

export interface BlueGreenOutcome {
  state: BlueGreenState;
  /** Why, for the environment's CutoverReady condition. */
  message: string;
  activeColor: Color | undefined;
  /** The Swarm service whose replicas the service status reports: the active colour, else the one coming up. */
  reportedServiceName: string;
  /** The route as stored after this pass. */
  route: Route | undefined;
  pending: PendingAttempt | undefined;
  cutovers: CutoverRecord[] | undefined;
  /** Whether this pass changed the Swarm. */
  changedSwarm: boolean;
  /** Proxies dropped from the drain after `--proxy-wait` (ProxyLagging). */
  lagging?: string[] | undefined;
  /** undefined: converged, nothing to look at until something changes. */
  requeueAfterMs: number | undefined;
}

/**
 * One blue-green service, one reconcile: applies what decideBlueGreen (decide.ts) says, deciding
 * again after a probe or a route write, until the decision is to wait or the Swarm was changed
 * (the next pass observes the result; requeued at once). Every input is read fresh (Swarm, stored
 * route, status), so a controller killed at any point converges when it restarts. Nothing here
 * decides: the replica count of each colour, the route and the history come from the decision.
 */
export async function reconcileBlueGreenService(input: BlueGreenServiceInput, deps: BlueGreenDeps): Promise<BlueGreenOutcome> {
  const { env, service, spec, snapshot } = input;
  const key = `${env}/${service}`;
  const log = deps.log.child({ service });
  const upstream = routeUpstream(env, service, spec);
  const colorService = (c: Color) => {
    const name = swarmServiceName(env, service, c);
    return input.owned.find((s) => s.name === name) ?? input.owned.find((s) => s.labels[LABEL_COLOR] === c);
  };
  const colors = { blue: colorService('blue'), green: colorService('green') };
  const uncoloured = input.owned.filter((o) => o !== colors.blue && o !== colors.green);
  let route = input.route;
  let pending = input.previous?.pending;
  let cutovers = input.previous?.cutovers;
  let promotion = await deps.promotions.readPromotion(env, service);
  // Only a service with both colours up can be about to switch or draining: the others never ask.
  const proxies = (colors.blue?.replicas ?? 0) > 0 && (colors.green?.replicas ?? 0) > 0 ? await deps.proxies.listProxies() : undefined;
  for (const p of proxies ?? []) deps.metrics?.proxyAppliedRevision.set({ proxy: p.id }, Number(p.revision));
  const owner = { env, service };

  /** One owner-checked transaction: servers, colour and (at a switch) the cutover record. */
  const setRoute = async (servers: string[], color: Color, record?: Omit<RouteCutover, 'revision'>) => {
    if (servers.length === 0) throw new Error(`${key}: refusing to empty route ${upstream}`);
    const next: Route = { upstream, servers: [...servers].sort(), color, owner };
    const revision = await deps.routes.setRoute({ ...next, owner }, record);
    const cutover = record ? { ...record, revision: revision ?? '0' } : route?.cutover;
    route = { ...next, ...(cutover ? { cutover } : {}) };
    log.info({ upstream, servers: next.servers, color, ...(record ? { revision } : {}) }, 'route published');
  };
  const startDrain = async (cutover: RouteCutover) => {
    await deps.routes.updateCutover(upstream, owner, cutover);
    route = route ? { ...route, cutover } : route;
    const waited = (Date.parse(cutover.drainFrom!) - Date.parse(cutover.at)) / 1000;
    deps.metrics?.cutoverDrainWait.observe(Math.max(0, waited));
    if (cutover.lagging) log.warn({ upstream, lagging: cutover.lagging, revision: cutover.revision }, 'proxies did not apply the switch within --proxy-wait: dropped, draining');
    else log.info({ upstream, proxies: cutover.proxies, waitedSeconds: waited }, 'every proxy serves the switch: draining');
  };
  /** The one place a blue-green colour's Swarm service (and so its replica count) is written. */
  const apply = async (c: ColorChange) => {
    const existing = colors[c.color];
    log.info({ color: c.color, op: c.op, replicas: c.replicas }, `${c.op} ${c.color}`);
    if (c.op === 'create') await deps.swarm.createService(c.spec);
    else if (c.op === 'update') await deps.swarm.updateService(existing!.id, existing!.version, c.spec);
    else await deps.swarm.scaleService(existing!.id, existing!.version, c.replicas);
  };

  const outcome = (d: BlueGreenDecision, changedSwarm: boolean, requeueAfterMs = d.requeueAfterMs): BlueGreenOutcome => ({
    state: d.state,
    message: d.message,
    activeColor: d.activeColor,
    reportedServiceName: swarmServiceName(env, service, d.activeColor ?? pending?.color ?? 'blue'),
    route,
    pending,
    cutovers,
    changedSwarm,
    ...(d.lagging ? { lagging: d.lagging } : {}),
    requeueAfterMs: changedSwarm ? 0 : requeueAfterMs,
  });

  let d: BlueGreenDecision | undefined;
  for (let i = 0; i < MAX_STEPS; i++) {
    d = decideBlueGreen({
      env,
      service,
      spec,
      ...colors,
      uncoloured,
      tasks: snapshot.tasks,
      nodes: snapshot.nodes,
      route,
      proxies,
      proxyWaitMs: deps.proxyWaitMs,
      pending,
      cutovers,
      promotion,
      probe: deps.probes.get(key),
      now: deps.now(),
    });
    if (d.probe) {
      const result = await deps.probe(d.probe.color, d.probe.endpoints);
      log.info({ color: result.color, endpoints: result.endpoints, ok: result.ok, message: result.message }, 'pre-promotion probe');
      deps.probes.set(key, result);
      continue;
    }
    pending = d.pending;
    // The drain's start is recorded before the old colour can go, so a restart resumes it.
    if (d.drainStart) await startDrain(d.drainStart);
    for (const c of d.changes) await apply(c);
    for (const id of d.remove) {
      log.info({ id }, 'removing the uncoloured service: blue-green serves the route');
      await deps.swarm.removeService(id);
    }
    if (d.route) await setRoute(d.route.servers, d.route.kind === 'cutover' ? d.route.to : d.route.color, d.route.kind === 'cutover' ? d.route.record : undefined);
    if (d.route?.kind === 'cutover') {
      log.info({ from: d.route.from, to: d.route.to, image: spec.image, seconds: d.record?.durationSeconds }, 'cut over');
      deps.probes.delete(key);
      if (promotion) {
        await deps.promotions.clearPromotion(env, service);
        promotion = undefined;
      }
    }
    if (d.record) {
      cutovers = appendCutover(cutovers, d.record);
      if (d.record.result === 'abandoned') log.warn({ color: d.record.toColor, image: spec.image, reason: d.record.message }, 'cutover abandoned; the route stays');
      await deps.persist(service, { pending, cutovers, activeColor: d.activeColor });
      if (deps.metrics) observeCutover(d.record, deps.metrics);
    }
    const changedSwarm = d.changes.length > 0 || d.remove.length > 0;
    // A route write changes what the next decision sees: decide again within this pass.
    if (changedSwarm || !d.route) return outcome(d, changedSwarm);
  }
  log.warn({ steps: MAX_STEPS }, 'blue-green step bound reached; continuing on the next pass');
  return outcome(d!, false, 0);
}
