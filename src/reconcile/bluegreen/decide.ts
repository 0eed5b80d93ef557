import { parseDuration, type ServiceSpec } from '../../api/index.js';
import type { BlueGreenState, Color, CutoverRecord, PendingAttempt, PendingState, PromotionRequest } from '../../api/status.js';
import type { ObservedNode, ObservedService, ObservedTask } from '../../swarm/model.js';
import { buildServiceSpec, runsVersion, type DockerServiceSpec } from '../../swarm/service-spec.js';
import { runningReplicas, serviceEndpoints } from '../env-status.js';

/**
 * Blue-green for ONE service as a pure state machine: (spec, observed colours, route, cutover
 * record) → the state it is in and the next step. The executor (execute.ts) applies the step,
 * persists `pending` and `record`, and asks again. Every replica count of either colour is
 * decided here, and only here.
 *
 * A release: the idle colour (the one the route does not point at) is set to the new spec at the
 * spec's replicas → Starting until all its tasks run (healthchecks passed) → probed over HTTP →
 * (autoPromote false: WaitingForPromotion until `berth promote`) → the cutover replaces the route's
 * whole server set and colour in one write → Draining: the old colour keeps running
 * `strategy.drain` → scaled to 0 (kept, so re-applying the old spec is a fast roll-back) →
 * CutOver. The first release has nothing to protect: Fresh, then cut over as soon as healthy.
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
  nodes: Map<string, ObservedNode>;
  /** The route as stored, undefined when there is none. */
  route?: { color?: Color | undefined; servers: string[] } | undefined;
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
  /** The new colour's endpoints replace the route's server set and colour in one write. */
  | { kind: 'cutover'; from?: Color; to: Color; servers: string[] }
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
  /** Decide again after this long; undefined: converged, nothing to wait for. */
  requeueAfterMs: number | undefined;
}

const other = (c: Color): Color => (c === 'blue' ? 'green' : 'blue');
const PROBE_FRESH_MS = 10_000;
const POLL_MS = 1_000;
const PROMOTE_POLL_MS = 5_000;
const ABORTED_POLL_MS = 60_000;

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

  // ---- The live colour runs the spec: CutOver, Draining, or a resize of the live colour.
  if (active && runsSpec(active)) {
    const resize: ColorChange[] = svc(active)!.replicas !== replicas ? [setTo(active, replicas)] : [];
    const idle = other(active);
    const idleSvc = svc(idle);
    if (idleSvc && idleSvc.replicas > 0) {
      const last = [...(input.cutovers ?? [])].reverse().find((r) => r.result === 'succeeded');
      const drainEnd = last && last.toColor === active && last.fromColor === idle ? Date.parse(last.at) + parseDuration(spec.strategy.drain) : 0;
      if (now.getTime() < drainEnd) {
        const until = new Date(drainEnd).toISOString();
        return decision({ state: 'Draining', message: `${service}: draining ${idle} until ${until}`, changes: resize, ...withRefresh(), pending: undefined, requeueAfterMs: drainEnd - now.getTime() });
      }
      return decision({
        state: 'Draining',
        message: `${service}: ${idle} drained, scaling it to 0`,
        changes: [...resize, { color: idle, op: 'scale', replicas: 0 }],
        ...withRefresh(),
        pending: undefined,
        requeueAfterMs: 0,
      });
    }
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

  const running = runningReplicas(tasksOf(target));
  const eps = endpoints(target);
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
    route: { kind: 'cutover', ...(active ? { from: active } : {}), to: target, servers: eps },
    pending: undefined,
    record: record('succeeded'),
    requeueAfterMs: 0,
  });
}

function abortedMessage(service: string, p: PendingAttempt, cutovers: CutoverRecord[] | undefined, active: Color | undefined): string {
  const rec = [...(cutovers ?? [])].reverse().find((r) => r.result === 'abandoned' && r.toColor === p.color && r.toImage === p.image);
  const cause = rec?.message ?? 'abandoned';
  return `${service}: ${p.color} (${p.image}) abandoned: ${cause}; ${active ? `${active} keeps serving` : 'nothing serves yet'}`;
}
