import { parseDuration, type ServiceSpec } from '../api/index.js';
import type { Color, CutoverRecord, PromotionRequest } from '../api/status.js';

export type { PromotionRequest };
import { metrics as sharedMetrics, type BerthMetrics } from '../metrics/registry.js';
import { LABEL_SPEC_HASH } from '../swarm/labels.js';
import type { ObservedNode, ObservedService, ObservedTask } from '../swarm/model.js';
import { buildServiceSpec } from '../swarm/service-spec.js';
import { runningReplicas, serviceEndpoints } from './env-status.js';

/**
 * Blue-green decisions for ONE service, as a pure function: observation + persisted progress in,
 * exactly one next step out. The controller applies the step, persists `pending` / `record`, and
 * calls again (immediately after a mutation, or after `requeueAfterMs` for a wait).
 *
 * Lifecycle: first deploy → blue, cut over as soon as healthy. A spec change → the idle colour
 * (the one the route does not point at) is created/updated with the new spec → wait until all its
 * replicas run (healthchecks passed) → probe its endpoints over HTTP → (autoPromote false: wait for
 * `berth promote`) → cutover: the route's whole server set + colour replaced in one txn → drain:
 * the old colour keeps running `strategy.drain` → scaleDown old colour to 0 (kept for the next
 * deploy). A green not healthy within `progressDeadline` is abandoned: the route never moves.
 * A replica-only change updates the active colour in place and refreshes the route (no cutover).
 *
 * "Matches the spec" is decided with the controller's own pure spec builder: an observed colour
 * matches when its berth.spec-hash equals the hash of the desired spec at that colour and at the
 * service's CURRENT replica count, so replicas never count as a new version.
 */

export type BlueGreenStep =
  /** Create the Swarm service `<env>_<service>_<color>` or update it to the desired spec and replicas. */
  | { kind: 'createOrUpdateIdle'; color: Color; hash: string; replicas: number; reason: string }
  | { kind: 'wait'; reason: string; requeueAfterMs: number }
  /** HTTP GET each endpoint (any 2xx/3xx is healthy), report back as `input.probe`, call again. */
  | { kind: 'probe'; color: Color; endpoints: string[] }
  /** setRoute({servers, color: to}) in one txn; then delete the promotion request. */
  | { kind: 'cutover'; from?: Color; to: Color; servers: string[] }
  /** Update the colour's service to 0 replicas (kept, so the next deploy reuses it). */
  | { kind: 'scaleDown'; color: Color }
  /** Scale the failed colour to 0; the route stays where it is. */
  | { kind: 'abandon'; color: Color; reason: string }
  /** Same active colour: set its replicas (when given) and publish its current endpoints. */
  | { kind: 'syncRoute'; color: Color; servers: string[]; replicas?: number }
  | { kind: 'done' };

/** Persisted between calls (the controller maps it onto ServiceStatus.pending). */
export interface BlueGreenPending {
  color: Color;
  image: string;
  /** ISO time the current attempt started (the idle colour was first set to this spec). */
  since: string;
  state: 'Progressing' | 'Probing' | 'WaitingForPromotion' | 'Abandoned';
}

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
  /** Tasks of both services (others are ignored). */
  tasks: ObservedTask[];
  nodes: Map<string, ObservedNode>;
  /** The route as stored (routes.listRoutes()), undefined when there is none. */
  route?: { color?: Color | undefined; servers: string[] } | undefined;
  pending?: BlueGreenPending | undefined;
  /** Cutover history, oldest first (ServiceStatus.cutovers). */
  cutovers?: CutoverRecord[] | undefined;
  promotion?: PromotionRequest | undefined;
  probe?: ProbeResult | undefined;
  now: Date;
}

export interface BlueGreenDecision {
  step: BlueGreenStep;
  /** The colour the route points at after this step (undefined before the first cutover). */
  activeColor: Color | undefined;
  /** Persist this as the new pending state (undefined: clear it). */
  pending: BlueGreenPending | undefined;
  /** Append to the cutover history when the step is applied (cutover or abandon). */
  record?: CutoverRecord;
}

const other = (c: Color): Color => (c === 'blue' ? 'green' : 'blue');
const PROBE_FRESH_MS = 10_000;
const POLL_MS = 1_000;
const PROMOTE_POLL_MS = 5_000;

/** The berth.spec-hash a colour carries when built from `spec` with `replicas`. */
export function colorHash(env: string, service: string, spec: ServiceSpec, color: Color, replicas: number): string {
  return buildServiceSpec(env, service, { ...spec, replicas }, color).Labels?.[LABEL_SPEC_HASH] ?? '';
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((v, i) => v === sb[i]);
}

export function decideBlueGreen(input: BlueGreenInput): BlueGreenDecision {
  const { env, service, spec, now } = input;
  const nowMs = now.getTime();
  const svc = (c: Color) => (c === 'blue' ? input.blue : input.green);
  const tasksOf = (c: Color) => {
    const s = svc(c);
    return s ? input.tasks.filter((t) => t.serviceId === s.id) : [];
  };
  const endpoints = (c: Color) => (svc(c) ? serviceEndpoints(spec, tasksOf(c), input.nodes) : []);
  /** Same version as desired (replicas aside). */
  const matches = (c: Color) => {
    const s = svc(c);
    if (!s) return false;
    const label = s.labels[LABEL_SPEC_HASH];
    // A scale-down may rebuild the spec (label at the new count) or only change the count.
    return label === colorHash(env, service, spec, c, s.replicas) || label === colorHash(env, service, spec, c, spec.replicas);
  };
  const healthy = (c: Color) => {
    const s = svc(c);
    return !!s && s.replicas === spec.replicas && spec.replicas > 0 && runningReplicas(tasksOf(c)) >= spec.replicas && endpoints(c).length > 0;
  };
  const drainMs = parseDuration(spec.strategy.drain);
  const deadlineMs = parseDuration(spec.strategy.progressDeadline);

  const routeColor = input.route?.color;
  const active: Color | undefined = routeColor && svc(routeColor) && (input.route?.servers.length ?? 0) > 0 ? routeColor : undefined;

  // --- the active colour runs the desired version: keep it in step, drain and scale down the other.
  if (active && matches(active)) {
    const a = svc(active)!;
    const eps = endpoints(active);
    if (a.replicas !== spec.replicas) {
      return { step: { kind: 'syncRoute', color: active, servers: eps.length > 0 ? eps : input.route!.servers, replicas: spec.replicas }, activeColor: active, pending: undefined };
    }
    // Publish the live endpoints; never an empty set (a route with servers keeps them until some run).
    if (eps.length > 0 && !sameList(eps, input.route!.servers)) {
      return { step: { kind: 'syncRoute', color: active, servers: eps }, activeColor: active, pending: undefined };
    }
    const idle = other(active);
    const idleSvc = svc(idle);
    if (idleSvc && idleSvc.replicas > 0) {
      const last = [...(input.cutovers ?? [])].reverse().find((r) => r.result === 'succeeded');
      const drainEnd = last && last.toColor === active && last.fromColor === idle ? Date.parse(last.at) + drainMs : 0;
      if (nowMs < drainEnd) {
        return { step: { kind: 'wait', reason: `draining ${idle} until ${new Date(drainEnd).toISOString()}`, requeueAfterMs: drainEnd - nowMs }, activeColor: active, pending: undefined };
      }
      return { step: { kind: 'scaleDown', color: idle }, activeColor: active, pending: undefined };
    }
    return { step: { kind: 'done' }, activeColor: active, pending: undefined };
  }

  // --- a new version (or the first one): bring up a colour, wait healthy, probe, promote, cut over.
  let target: Color;
  if (active) target = other(active);
  else {
    const candidates: Color[] = [...(routeColor ? [routeColor] : []), 'blue', 'green'];
    target = candidates.find((c) => matches(c) && (svc(c)!.replicas > 0 || input.pending?.color === c)) ?? routeColor ?? 'blue';
  }
  const t = svc(target);
  const continuing = input.pending && input.pending.color === target && input.pending.image === spec.image && matches(target);
  const since = continuing ? input.pending!.since : now.toISOString();
  const pending = (state: BlueGreenPending['state']): BlueGreenPending => ({ color: target, image: spec.image, since, state });

  if (continuing && input.pending!.state === 'Abandoned') {
    return {
      step: { kind: 'wait', reason: `${target} (${spec.image}) was abandoned; change the spec to retry`, requeueAfterMs: 60_000 },
      activeColor: active,
      pending: input.pending,
    };
  }

  if (!t || !matches(target) || t.replicas !== spec.replicas) {
    const hash = colorHash(env, service, spec, target, spec.replicas);
    const reason = !t ? 'create' : !matches(target) ? 'new version' : 'replicas';
    return { step: { kind: 'createOrUpdateIdle', color: target, hash, replicas: spec.replicas, reason }, activeColor: active, pending: pending('Progressing') };
  }

  const elapsed = nowMs - Date.parse(since);
  const record = (result: CutoverRecord['result'], message?: string): CutoverRecord => ({
    at: now.toISOString(),
    ...(active ? { fromColor: active } : {}),
    toColor: target,
    ...(active && svc(active) ? { fromImage: svc(active)!.image } : {}),
    toImage: spec.image,
    durationSeconds: Math.max(0, elapsed) / 1000,
    result,
    ...(message ? { message } : {}),
  });
  const abandonOr = (reason: string, requeue: number, state: BlueGreenPending['state']): BlueGreenDecision => {
    if (elapsed >= deadlineMs) {
      const message = `not healthy within ${spec.strategy.progressDeadline}: ${reason}`;
      return {
        step: { kind: 'abandon', color: target, reason: message },
        activeColor: active,
        pending: pending('Abandoned'),
        record: record('abandoned', message),
      };
    }
    return { step: { kind: 'wait', reason, requeueAfterMs: Math.min(requeue, deadlineMs - elapsed) }, activeColor: active, pending: pending(state) };
  };

  if (!healthy(target)) {
    const running = runningReplicas(tasksOf(target));
    return abandonOr(`${target} has ${running}/${spec.replicas} replicas running and healthy`, POLL_MS, 'Progressing');
  }
  const eps = endpoints(target);
  // First deploy: nothing to protect, cut over as soon as healthy.
  if (active) {
    const p = input.probe;
    const fresh = p && p.color === target && sameList(p.endpoints, eps) && nowMs - Date.parse(p.at) < PROBE_FRESH_MS;
    if (!fresh) return { step: { kind: 'probe', color: target, endpoints: eps }, activeColor: active, pending: pending('Probing') };
    if (!p!.ok) return abandonOr(`probe of ${target} failed: ${p!.message ?? 'not 2xx'}`, POLL_MS, 'Probing');
    const promoted = input.promotion && input.promotion.color === target && input.promotion.image === spec.image;
    if (!spec.strategy.autoPromote && !promoted) {
      return {
        step: { kind: 'wait', reason: `${target} (${spec.image}) is healthy and waits for: berth promote env ${env} ${service}`, requeueAfterMs: PROMOTE_POLL_MS },
        activeColor: active,
        pending: pending('WaitingForPromotion'),
      };
    }
  }
  return {
    step: { kind: 'cutover', ...(active ? { from: active } : {}), to: target, servers: eps },
    activeColor: target,
    pending: undefined,
    record: record('succeeded'),
  };
}

/** Keeps the last `max` cutover records (ServiceStatus.cutovers). */
export function appendCutover(history: CutoverRecord[] | undefined, record: CutoverRecord, max = 10): CutoverRecord[] {
  return [...(history ?? []), record].slice(-max);
}

/** berth_cutovers_total{result} and berth_cutover_duration_seconds, after the step was applied. */
export function observeCutover(record: CutoverRecord, m: Pick<BerthMetrics, 'cutoversTotal' | 'cutoverDuration'> = sharedMetrics()): void {
  m.cutoversTotal.inc({ result: record.result });
  if (record.result === 'succeeded') m.cutoverDuration.observe(record.durationSeconds);
}

/** ServiceStatus.pending from the decision's pending state. */
export function pendingStatus(p: BlueGreenPending | undefined): { color: Color; image: string; since: string; state: string } | undefined {
  return p ? { color: p.color, image: p.image, since: p.since, state: p.state } : undefined;
}

/** Back from ServiceStatus.pending (an unknown state reads as Progressing). */
export function pendingFromStatus(p: { color: Color; image: string; since: string; state: string } | undefined): BlueGreenPending | undefined {
  if (!p) return undefined;
  const states = ['Progressing', 'Probing', 'WaitingForPromotion', 'Abandoned'] as const;
  const state = (states as readonly string[]).includes(p.state) ? (p.state as BlueGreenPending['state']) : 'Progressing';
  return { color: p.color, image: p.image, since: p.since, state };
}
