import type { Logger } from 'pino';
import { routeUpstream, type ServiceSpec } from '../api/index.js';
import type { Color, CutoverRecord, ServiceStatus } from '../api/status.js';
import type { BerthMetrics } from '../metrics/registry.js';
import type { SwarmApi } from '../swarm/api.js';
import { LABEL_COLOR, swarmServiceName } from '../swarm/labels.js';
import type { ObservedService, SwarmSnapshot } from '../swarm/model.js';
import { buildServiceSpec } from '../swarm/service-spec.js';
import { appendCutover, decideBlueGreen, observeCutover, pendingFromStatus, pendingStatus, type BlueGreenPending, type ProbeResult } from './bluegreen.js';
import type { PromotionStore, Route, RouteWriter } from './ports.js';
import { planService } from './planner/services.js';

/** Decisions per reconcile at most: probe → cutover → drain-wait is three; a bound, not a target. */
const MAX_STEPS = 8;

export type ProbeFn = (color: Color, endpoints: string[]) => Promise<ProbeResult>;

export interface BlueGreenDeps {
  swarm: SwarmApi;
  routes: RouteWriter;
  promotions: PromotionStore;
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

export type BlueGreenState = 'Converged' | 'Progressing' | 'WaitingForPromotion' | 'Abandoned';

export interface BlueGreenOutcome {
  state: BlueGreenState;
  /** Why, for the environment's CutoverReady condition. */
  message: string;
  activeColor: Color | undefined;
  /** The Swarm service whose replicas the service status reports: the active colour, else the one coming up. */
  reportedServiceName: string;
  /** The route as stored after this pass (only cutover and syncRoute write it). */
  route: Route | undefined;
  pending: ServiceStatus['pending'];
  cutovers: CutoverRecord[] | undefined;
  /** Whether this pass changed the Swarm. */
  changedSwarm: boolean;
  /** undefined: converged, nothing to look at until something changes. */
  requeueAfterMs: number | undefined;
}

/**
 * One blue-green service, one reconcile: asks decideBlueGreen (bluegreen.ts) for the next step and
 * applies it, deciding again after a probe or a route write, until the decision is to wait, is
 * done, or the Swarm was changed (the next pass observes the result; requeued at once). Every
 * input is read fresh (Swarm, stored route, status), so a controller killed at any point converges
 * when it restarts. The route is written only by a cutover (to a colour that passed its probe, or
 * the first deploy) or a syncRoute of the active colour, and never with an empty server set.
 */
export async function reconcileBlueGreenService(input: BlueGreenServiceInput, deps: BlueGreenDeps): Promise<BlueGreenOutcome> {
  const { env, service, spec, snapshot } = input;
  const key = `${env}/${service}`;
  const log = deps.log.child({ service });
  const upstream = routeUpstream(env, service, spec);
  const owner = { env, service };
  const colorService = (c: Color) => {
    const name = swarmServiceName(env, service, c);
    return input.owned.find((s) => s.name === name) ?? input.owned.find((s) => s.labels[LABEL_COLOR] === c);
  };
  const blue = colorService('blue');
  const green = colorService('green');
  const nodes = new Map(snapshot.nodes.map((n) => [n.id, n]));
  let route = input.route;
  let pending: BlueGreenPending | undefined = pendingFromStatus(input.previous?.pending);
  let cutovers = input.previous?.cutovers;
  let promotion = await deps.promotions.readPromotion(env, service);

  const outcome = (state: BlueGreenState, message: string, activeColor: Color | undefined, requeueAfterMs: number | undefined, changedSwarm = false): BlueGreenOutcome => {
    const reported = activeColor ?? pending?.color ?? 'blue';
    return {
      state,
      message,
      activeColor,
      reportedServiceName: swarmServiceName(env, service, reported),
      route,
      pending: pendingStatus(pending),
      cutovers,
      changedSwarm,
      requeueAfterMs,
    };
  };
  const setRoute = async (servers: string[], color: Color) => {
    if (servers.length === 0) throw new Error(`${key}: refusing to empty route ${upstream}`);
    const next: Route = { upstream, servers: [...servers].sort(), color, owner };
    await deps.routes.setRoute({ ...next, owner });
    route = next;
    log.info({ upstream, servers: next.servers, color }, 'route published');
  };

  for (let i = 0; i < MAX_STEPS; i++) {
    const d = decideBlueGreen({
      env,
      service,
      spec,
      blue,
      green,
      tasks: snapshot.tasks,
      nodes,
      route,
      pending,
      cutovers,
      promotion,
      probe: deps.probes.get(key),
      now: deps.now(),
    });
    const step = d.step;
    pending = d.pending;
    if (d.record) cutovers = appendCutover(cutovers, d.record);
    switch (step.kind) {
      case 'done':
        // A rolling service left from before the strategy changed goes once a colour serves.
        const leftovers = input.owned.filter((o) => o !== blue && o !== green);
        for (const s of leftovers) {
          log.info({ name: s.name }, 'removing the uncoloured service: blue-green serves the route');
          await deps.swarm.removeService(s.id);
        }
        if (leftovers.length > 0) return outcome('Progressing', `${service}: removed the rolling service`, d.activeColor, 0, true);
        return outcome('Converged', `${d.activeColor ?? 'no colour'} serves ${spec.image}`, d.activeColor, undefined);
      case 'wait': {
        const state: BlueGreenState =
          pending?.state === 'Abandoned' ? 'Abandoned' : pending?.state === 'WaitingForPromotion' ? 'WaitingForPromotion' : 'Progressing';
        const message = state === 'Abandoned' ? abandonMessage(service, pending!, cutovers, d.activeColor) : `${service}: ${step.reason}`;
        return outcome(state, message, d.activeColor, step.requeueAfterMs);
      }
      case 'probe': {
        const result = await deps.probe(step.color, step.endpoints);
        log.info({ color: step.color, endpoints: step.endpoints, ok: result.ok, message: result.message }, 'pre-promotion probe');
        deps.probes.set(key, result);
        continue;
      }
      case 'cutover': {
        await setRoute(step.servers, step.to);
        log.info({ from: step.from, to: step.to, image: spec.image, seconds: d.record?.durationSeconds }, 'cut over');
        deps.probes.delete(key);
        if (promotion) {
          await deps.promotions.clearPromotion(env, service);
          promotion = undefined;
        }
        await deps.persist(service, { pending: pendingStatus(pending), cutovers, activeColor: step.to });
        if (d.record && deps.metrics) observeCutover(d.record, deps.metrics);
        continue;
      }
      case 'syncRoute': {
        const active = step.color === 'blue' ? blue : green;
        if (step.replicas !== undefined && active) {
          log.info({ color: step.color, replicas: step.replicas }, 'scaling the active colour');
          await deps.swarm.updateService(active.id, active.version, buildServiceSpec(env, service, { ...spec, replicas: step.replicas }, step.color));
          await setRoute(step.servers, step.color);
          return outcome('Progressing', `${service}: scaling ${step.color} to ${step.replicas}`, d.activeColor, 0, true);
        }
        await setRoute(step.servers, step.color);
        continue;
      }
      case 'createOrUpdateIdle': {
        const existing = step.color === 'blue' ? blue : green;
        log.info({ color: step.color, image: spec.image, replicas: step.replicas, reason: step.reason }, 'bringing up the idle colour');
        for (const a of planService(env, service, { ...spec, replicas: step.replicas }, existing ? [existing] : [], step.color)) {
          if (a.kind === 'createService') await deps.swarm.createService(a.spec);
          else if (a.kind === 'updateService') await deps.swarm.updateService(a.id, a.version, a.spec);
        }
        return outcome('Progressing', `${service}: starting ${step.color} (${spec.image})`, d.activeColor, 0, true);
      }
      case 'scaleDown':
      case 'abandon': {
        const s = step.color === 'blue' ? blue : green;
        if (s && s.replicas > 0) await deps.swarm.scaleService(s.id, s.version, 0);
        if (step.kind === 'scaleDown') {
          log.info({ color: step.color }, 'drained: old colour scaled to 0');
          return outcome('Progressing', `${service}: ${step.color} scaled to 0`, d.activeColor, 0, true);
        }
        log.warn({ color: step.color, image: spec.image, reason: step.reason }, 'cutover abandoned; the route stays');
        await deps.persist(service, { pending: pendingStatus(pending), cutovers, activeColor: d.activeColor });
        if (d.record && deps.metrics) observeCutover(d.record, deps.metrics);
        return outcome('Abandoned', abandonMessage(service, pending!, cutovers, d.activeColor), d.activeColor, 0, true);
      }
    }
  }
  log.warn({ steps: MAX_STEPS }, 'blue-green step bound reached; continuing on the next pass');
  return outcome('Progressing', `${service}: converging`, route?.color, 0);
}

function abandonMessage(service: string, p: BlueGreenPending, cutovers: CutoverRecord[] | undefined, active: Color | undefined): string {
  const rec = [...(cutovers ?? [])].reverse().find((r) => r.result === 'abandoned' && r.toColor === p.color && r.toImage === p.image);
  const cause = rec?.message ?? 'abandoned';
  return `${service}: ${p.color} (${p.image}) abandoned: ${cause}; ${active ? `${active} keeps serving` : 'nothing serves yet'}`;
}
