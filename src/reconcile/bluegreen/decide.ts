import { parseDuration, routeUpstream, type ServiceSpec } from '../../api/index.js';
import type { BlueGreenState, Color, CutoverRecord, PendingAttempt, PendingState, PromotionRequest } from '../../api/status.js';
import type { ObservedNode, ObservedService, ObservedTask } from '../../swarm/model.js';
import type { NodeLookup } from '../../swarm/node-index.js';
import { buildServiceSpec, runsVersion, type DockerServiceSpec } from '../../swarm/service-spec.js';
import { runningReplicas, serviceEndpoints } from '../env-status.js';
import type { ProxyAck, RouteCutover } from '../ports.js';

/**
 * Blue-green for ONE service as a pure state machine: (spec, observed colours, route, cutover
 * record) → the state it is in and the next step. The executor (execute.ts) applies the step,
 * persists `pending` and `record`, and asks again. Every replica count of either colour is
 * decided here, and only here.
 *
 * A release: the idle colour (the one the route does not point at) is set to the new spec at the
 * spec's replicas → Starting until all its tasks run (healthchecks passed) → probed over HTTP →
 * (autoPromote false: WaitingForPromotion until `berth promote`) → the cutover replaces the route's
 * whole server set and colour, and writes the cutover record, in one write → Draining: the old
 * colour keeps serving until every registered `berth proxy` acknowledged the switch (at most
 * `proxyWait`; the rest are reported as lagging and dropped), then `strategy.drain` → scaled to 0
 * (kept, so re-applying the old spec is a fast roll-back) → CutOver. The drain is read from the
 * record beside the route, so a controller that crashed after the switch resumes the same drain. The first release has nothing to protect: Fresh, then cut over as soon as healthy.
 * A colour not healthy within `progressDeadline` is Aborted: scaled to 0, the route never moves.
 *
 * A colour "runs the spec" when its berth.spec-hash is the spec's, and replicas are not part of
 * the hash: a resize is never a release. It sets the live colour to the new size in place, and
 * during a cutover the waiting colour too, so that promotion does not change capacity.
 */

export interface ProbeResult {
  color: Color;
  endpoints: string[];
  ok: boolean;
  at: string;
  message?: string;
}

export interface BlueGreenInput {
  env: string;
  service: string;
  spec: ServiceSpec;
  /** `<env>_<service>_blue` / `_green` as observed (undefined: does not exist). */
  blue?: ObservedService | undefined;
  green?: ObservedService | undefined;
  /** Owned services of this berth service that are neither colour: left from a rolling strategy. */
  uncoloured?: ObservedService[] | undefined;
  /** Tasks of the colours (others are ignored). */
  tasks: ObservedTask[];
  nodes: NodeLookup;
  /** The route as stored, undefined when there is none. */
  route?: { color?: Color | undefined; servers: string[]; cutover?: RouteCutover | undefined } | undefined;
  /** The `berth proxy` registrations (none with confd: the drain is then time-based). */
  proxies?: ProxyAck[] | undefined;
  /** How long proxies that did not acknowledge a switch may hold the drain (`--proxy-wait`). */
  proxyWaitMs?: number | undefined;
  /** The attempt in progress (ServiceStatus.pending). */
  pending?: PendingAttempt | undefined;
  /** Cutover history, oldest first (ServiceStatus.cutovers). */
  cutovers?: CutoverRecord[] | undefined;
  promotion?: PromotionRequest | undefined;
  probe?: ProbeResult | undefined;
  now: Date;
}

/**
 * One colour's Swarm change. `create` and `update` set the colour to `spec`, the service spec at
 * `replicas` (an update is a new version, or the same version resized in place: same hash, Swarm
 * only scales); `scale` keeps whatever version the colour runs and sets only its replica count.
 */
export type ColorChange =
  | { color: Color; op: 'create' | 'update'; replicas: number; spec: DockerServiceSpec }
  | { color: Color; op: 'scale'; replicas: number };

export type RouteChange =
  /** The new colour's endpoints replace the route's server set and colour, with the record, in one write. */
  | { kind: 'cutover'; from?: Color; to: Color; servers: string[]; record: Omit<RouteCutover, 'revision'> }
  /** The live colour's tasks moved or were resized: publish its current endpoints (never none). */
  | { kind: 'refresh'; color: Color; servers: string[] };

export interface BlueGreenDecision {
  state: BlueGreenState;
  /** Why, in one line (the CutoverReady condition, the log). */
  message: string;
  /** The colour the route points at once this step is applied (undefined before the first cutover). */
  activeColor: Color | undefined;
  /** HTTP GET each endpoint, then decide again with the result; nothing else is applied. */
  probe?: { color: Color; endpoints: string[] };
  /** At most one per colour. */
  changes: ColorChange[];
  /** Ids of uncoloured leftovers to remove. */
  remove: string[];
  route?: RouteChange;
  /** Persist as ServiceStatus.pending (undefined: clear it). */
  pending: PendingAttempt | undefined;
  /** Append to the cutover history once applied (a cutover or an abandon). */
  record?: CutoverRecord;
  /** The route's cutover record with the drain's start: written beside the route. */
  drainStart?: RouteCutover;
  /** Proxies dropped from this drain after `proxyWait` without acknowledging (ProxyLagging). */
  lagging?: string[];
  /** Decide again after this long; undefined: converged, nothing to wait for. */
  requeueAfterMs: number | undefined;
}

const other = (c: Color): Color => (c === 'blue' ? 'green' : 'blue');
const PROBE_FRESH_MS = 10_000;
const POLL_MS = 1_000;
const PROMOTE_POLL_MS = 5_000;
const ABORTED_POLL_MS = 60_000;
export const DEFAULT_PROXY_WAIT_MS = 5 * 60_000;

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((v, i) => v === sb[i]);
}

export function decideBlueGreen(input: BlueGreenInput): BlueGreenDecision {
  const { env, service, spec, now } = input;
  const replicas = spec.replicas;
  const svc = (c: Color) => (c === 'blue' ? input.blue : input.green);
  const tasksOf = (c: Color) => {
    const s = svc(c);
    return s ? input.tasks.filter((t) => t.serviceId === s.id) : [];
  };
  const endpoints = (c: Color) => (svc(c) ? serviceEndpoints(spec, tasksOf(c), input.nodes) : []);
  const runsSpec = (c: Color) => {
    const s = svc(c);
    return !!s && runsVersion(s, buildServiceSpec(env, service, spec, c));
  };

  /** The colour set to the spec at `n` replicas: a new version, or the same one resized. */
  const setTo = (c: Color, n: number, op: 'create' | 'update' = 'update'): ColorChange => ({ color: c, op, replicas: n, spec: buildServiceSpec(env, service, { ...spec, replicas: n }, c) });

  const routeColor = input.route?.color;
  const active: Color | undefined = routeColor && svc(routeColor) && (input.route?.servers.length ?? 0) > 0 ? routeColor : undefined;
  const decision = (d: Omit<BlueGreenDecision, 'activeColor' | 'changes' | 'remove'> & Partial<BlueGreenDecision>): BlueGreenDecision => ({
    activeColor: active,
    changes: [],
    remove: [],
    ...d,
  });
  /** The live colour's endpoints when they differ from the route's (never an empty set). */
  const refresh = (): RouteChange | undefined => {
    if (!active) return undefined;
    const eps = endpoints(active);
    return eps.length > 0 && !sameList(eps, input.route!.servers) ? { kind: 'refresh', color: active, servers: eps } : undefined;
  };
  const withRefresh = () => {
    const route = refresh();
    return route ? { route } : {};
  };

  /**
   * The idle colour still has tasks: it keeps them until the proxies applied the switch away from
   * it and its drain has ended (in-flight requests finish), then it is scaled to 0. `next` says
   * what follows, for the message; `changes` go along in every pass (a resize of the live colour).
   */
  const drainIdle = (live: Color, idle: Color, changes: ColorChange[], next = ''): BlueGreenDecision => {
    const gate = drainGate(input, live, idle);
    if (gate.waitingFor) {
      return decision({ state: 'Draining', message: `${service}: ${idle} keeps serving until ${gate.waitingFor}${next}`, changes, ...withRefresh(), pending: undefined, requeueAfterMs: gate.requeueAfterMs });
    }
    const marks = { ...(gate.drainStart ? { drainStart: gate.drainStart } : {}), ...(gate.lagging ? { lagging: gate.lagging } : {}) };
    const drainEnd = gate.drainFrom === undefined ? 0 : gate.drainFrom + parseDuration(spec.strategy.drain);
    if (now.getTime() < drainEnd) {
      const until = new Date(drainEnd).toISOString();
      return decision({ state: 'Draining', message: `${service}: draining ${idle} until ${until}${next}`, changes, ...withRefresh(), ...marks, pending: undefined, requeueAfterMs: drainEnd - now.getTime() });
    }
    return decision({
      state: 'Draining',
      message: `${service}: ${idle} drained, scaling it to 0${next}`,
      changes: [...changes, { color: idle, op: 'scale', replicas: 0 }],
      ...withRefresh(),
      ...marks,
      pending: undefined,
      requeueAfterMs: 0,
    });
  };

  // ---- The live colour runs the spec: CutOver, Draining, or a resize of the live colour.
  if (active && runsSpec(active)) {
    const resize: ColorChange[] = svc(active)!.replicas !== replicas ? [setTo(active, replicas)] : [];
    const idle = other(active);
    const idleSvc = svc(idle);
    if (idleSvc && idleSvc.replicas > 0) return drainIdle(active, idle, resize);
    if (resize.length > 0) {
      return decision({ state: 'Resizing', message: `${service}: resizing ${active} to ${replicas}`, changes: resize, ...withRefresh(), pending: undefined, requeueAfterMs: 0 });
    }
    const leftovers = input.uncoloured ?? [];
    return decision({
      state: 'CutOver',
      message: `${service}: ${active} serves ${spec.image}`,
      remove: leftovers.map((s) => s.id),
      ...withRefresh(),
      pending: undefined,
      requeueAfterMs: leftovers.length > 0 ? 0 : undefined,
    });
  }

  // ---- A release: the first, or the idle colour brought to the spec while the live one serves.
  let target: Color;
  if (active) target = other(active);
  else {
    const candidates: Color[] = [...(routeColor ? [routeColor] : []), 'blue', 'green'];
    target = candidates.find((c) => runsSpec(c) && (svc(c)!.replicas > 0 || input.pending?.color === c)) ?? routeColor ?? 'blue';
  }
  const t = svc(target);
  const continuing = input.pending !== undefined && input.pending.color === target && input.pending.image === spec.image && runsSpec(target);
  const since = continuing ? input.pending!.since : now.toISOString();
  const pending = (state: PendingState): PendingAttempt => ({ color: target, image: spec.image, since, state });
  /** The live colour follows the spec's size during the whole release: promotion never changes capacity. */
  const live: ColorChange[] = active && svc(active)!.replicas !== replicas ? [{ color: active, op: 'scale', replicas }] : [];
  const elapsed = now.getTime() - Date.parse(since);
  const deadlineMs = parseDuration(spec.strategy.progressDeadline);

  if (continuing && input.pending!.state === 'Abandoned') {
    const stray: ColorChange[] = t!.replicas > 0 ? [{ color: target, op: 'scale', replicas: 0 }] : [];
    return decision({
      state: 'Aborted',
      message: abortedMessage(service, input.pending!, input.cutovers, active),
      changes: [...live, ...stray],
      ...withRefresh(),
      pending: input.pending,
      requeueAfterMs: stray.length + live.length > 0 ? 0 : ABORTED_POLL_MS,
    });
  }

  // The idle colour still runs another version (draining after the last cutover, or an earlier
  // attempt): it goes to 0 first, after its drain, and the new version starts from nothing. Set to
  // the new version in place, Swarm would roll its old tasks one by one, cutting the drain short
  // and spending the new attempt's progressDeadline on the roll.
  if (active && t && t.replicas > 0 && !runsSpec(target)) return drainIdle(active, target, live, `; then it takes ${spec.image}`);

  if (!t || !runsSpec(target) || (!continuing && t.replicas !== replicas)) {
    return decision({
      state: active ? 'Starting' : 'Fresh',
      message: `${service}: starting ${target} (${spec.image})`,
      changes: [setTo(target, replicas, t ? 'update' : 'create'), ...live],
      ...withRefresh(),
      pending: pending('Progressing'),
      requeueAfterMs: 0,
    });
  }

  if (t.replicas !== replicas || live.length > 0) {
    const resize: ColorChange[] = t.replicas !== replicas ? [setTo(target, replicas)] : [];
    return decision({
      state: 'Resizing',
      message: `${service}: resizing ${[...(active ? [active] : []), target].join(' and ')} to ${replicas}`,
      changes: [...live, ...resize],
      ...withRefresh(),
      pending: continuing ? input.pending : pending('Progressing'),
      requeueAfterMs: 0,
    });
  }

  const record = (result: CutoverRecord['result'], message?: string): CutoverRecord => ({
    at: now.toISOString(),
    ...(active ? { fromColor: active, fromImage: svc(active)!.image } : {}),
    toColor: target,
    toImage: spec.image,
    durationSeconds: Math.max(0, elapsed) / 1000,
    result,
    ...(message ? { message } : {}),
  });
  /** Not healthy yet: wait, or abandon once progressDeadline has passed. */
  const notYet = (state: 'Starting' | 'Unhealthy', reason: string, pendingState: PendingState): BlueGreenDecision => {
    if (elapsed >= deadlineMs) {
      const message = `not healthy within ${spec.strategy.progressDeadline}: ${reason}`;
      const abandoned = pending('Abandoned');
      const rec = record('abandoned', message);
      return decision({
        state: 'Aborted',
        message: abortedMessage(service, abandoned, [rec], active),
        changes: [{ color: target, op: 'scale', replicas: 0 }],
        pending: abandoned,
        record: rec,
        requeueAfterMs: 0,
      });
    }
    return decision({ state, message: `${service}: ${reason}`, ...withRefresh(), pending: pending(pendingState), requeueAfterMs: Math.min(POLL_MS, deadlineMs - elapsed) });
  };

  // Only the target's tasks made from its current spec count: an idle colour set to a new version
  // while its old tasks still run (a release during a drain, or a change of its environment only)
  // must not be probed or routed on those.
  const current = tasksOf(target).filter((task) => task.template === t.template);
  const running = runningReplicas(current);
  const eps = serviceEndpoints(spec, current, input.nodes);
  if (t.updateStatus?.state === 'updating') {
    return notYet('Starting', `${target} is being updated by Swarm (${running}/${replicas} replicas of ${spec.image} running)`, 'Progressing');
  }
  if (replicas === 0 || running < replicas || eps.length === 0) {
    return notYet('Starting', `${target} has ${running}/${replicas} replicas running and healthy`, 'Progressing');
  }
  // The first release has nothing to protect: cut over as soon as healthy.
  if (active) {
    const p = input.probe;
    const fresh = p && p.color === target && sameList(p.endpoints, eps) && now.getTime() - Date.parse(p.at) < PROBE_FRESH_MS;
    if (!fresh) {
      return decision({ state: 'Starting', message: `${service}: probing ${target}`, probe: { color: target, endpoints: eps }, pending: pending('Probing'), requeueAfterMs: 0 });
    }
    if (!p.ok) return notYet('Unhealthy', `probe of ${target} failed: ${p.message ?? 'not 2xx'}`, 'Probing');
    const promoted = input.promotion && input.promotion.color === target && input.promotion.image === spec.image;
    if (!spec.strategy.autoPromote && !promoted) {
      return decision({
        state: 'WaitingForPromotion',
        message: `${service}: ${target} (${spec.image}) is healthy and waits for: berth promote env ${env} ${service}`,
        ...withRefresh(),
        pending: pending('WaitingForPromotion'),
        requeueAfterMs: PROMOTE_POLL_MS,
      });
    }
  }
  return decision({
    state: 'CutOver',
    message: `${service}: cut over to ${target} (${spec.image})`,
    activeColor: target,
    route: {
      kind: 'cutover',
      ...(active ? { from: active } : {}),
      to: target,
      servers: eps,
      record: { ...(active ? { from: active } : {}), to: target, at: now.toISOString(), proxies: (input.proxies ?? []).map((p) => p.id).sort() },
    },
    pending: undefined,
    record: record('succeeded'),
    requeueAfterMs: 0,
  });
}

interface DrainGate {
  /** Still waiting for these proxies to apply the switch (the drain has not begun). */
  waitingFor?: string;
  requeueAfterMs?: number;
  /** When the drain began (ms); undefined: no record of the switch, the old colour may go. */
  drainFrom?: number;
  /** The record to write when it does not hold the drain's start yet. */
  drainStart?: RouteCutover;
  lagging?: string[];
}

/**
 * When the old colour's drain begins. With a cutover record beside the route: once every proxy
 * registered at the switch (or since) serves its revision, or `proxyWait` after the switch for
 * those that do not (dropped, reported as lagging); with no proxy at all (confd), at the switch.
 * Without a record (a route switched before records existed): the status history's last cutover.
 */
function drainGate(input: BlueGreenInput, active: Color, idle: Color): DrainGate {
  const now = input.now.getTime();
  const c = input.route?.cutover;
  if (!c || c.to !== active || c.from !== idle) {
    const last = [...(input.cutovers ?? [])].reverse().find((r) => r.result === 'succeeded');
    return last && last.toColor === active && last.fromColor === idle ? { drainFrom: Date.parse(last.at) } : {};
  }
  if (c.drainFrom) return { drainFrom: Date.parse(c.drainFrom), ...(c.lagging ? { lagging: c.lagging } : {}) };
  const upstream = routeUpstream(input.env, input.service, input.spec);
  const live = new Map((input.proxies ?? []).map((p) => [p.id, p]));
  const expected = [...new Set([...c.proxies, ...live.keys()])].sort();
  const waiting = expected.filter((id) => {
    const ack = live.get(id);
    return !ack || BigInt(ack.revision) < BigInt(c.revision) || ack.rejected.includes(upstream);
  });
  const switched = Date.parse(c.at);
  const proxyWaitMs = input.proxyWaitMs ?? DEFAULT_PROXY_WAIT_MS;
  if (waiting.length > 0 && now - switched < proxyWaitMs) {
    return { waitingFor: `proxies ${waiting.join(', ')} apply the switch (revision ${c.revision})`, requeueAfterMs: Math.min(POLL_MS, switched + proxyWaitMs - now) };
  }
  const drainFrom = expected.length === 0 ? switched : now;
  const lagging = waiting.length > 0 ? waiting : undefined;
  return { drainFrom, drainStart: { ...c, drainFrom: new Date(drainFrom).toISOString(), ...(lagging ? { lagging } : {}) }, ...(lagging ? { lagging } : {}) };
}

function abortedMessage(service: string, p: PendingAttempt, cutovers: CutoverRecord[] | undefined, active: Color | undefined): string {
  const rec = [...(cutovers ?? [])].reverse().find((r) => r.result === 'abandoned' && r.toColor === p.color && r.toImage === p.image);
  const cause = rec?.message ?? 'abandoned';
  return `${service}: ${p.color} (${p.image}) abandoned: ${cause}; ${active ? `${active} keeps serving` : 'nothing serves yet'}`;
}
