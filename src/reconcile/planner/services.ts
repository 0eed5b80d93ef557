import type { Environment, ServiceSpec } from '../../api/environment.js';
import type { EnvironmentStatus, RolledBack } from '../../api/status.js';
import { LABEL_COLOR, LABEL_ENV, LABEL_INSTALLATION, LABEL_SERVICE, LABEL_SPEC_HASH, swarmServiceName } from '../../swarm/labels.js';
import { isRollback, type ObservedService } from '../../swarm/model.js';
import { buildServiceSpec, runsVersion, type DockerServiceSpec } from '../../swarm/service-spec.js';
import type { Action, UpdateReason } from './actions.js';

/**
 * Services labelled for `env`, never by name. The reconciler hands the planner an owned snapshot
 * (ownership.ts), so another installation's services never reach here.
 */
export function ownedServices(env: string, services: ObservedService[]): ObservedService[] {
  return services.filter((s) => s.labels[LABEL_ENV] === env);
}

/**
 * Brings one rolling berth service to its spec. `candidates` are the owned Swarm services for
 * this berth service; normally one or none. A duplicate (a controller killed between create and
 * its next look) is removed, the oldest one kept.
 */
function planService(env: string, service: string, spec: ServiceSpec, candidates: ObservedService[], rolledBack: RolledBack | undefined): Action[] {
  const desired = buildServiceSpec(env, service, spec);
  const name = desired.Name!;
  if (candidates.length === 0) return [{ kind: 'createService', env, service, name, spec: desired }];
  const [keep, ...dupes] = oldestFirst(candidates);
  const actions: Action[] = dupes.map((d) => ({ kind: 'removeService', env, service, name: d.name, id: d.id, reason: 'duplicate' }));
  // Swarm rolled this very spec back: issuing it again would only be rolled back again.
  const held = rolledBack !== undefined && rolledBack.specHash === desired.Labels?.[LABEL_SPEC_HASH];
  const reason = updateReason(desired, spec.replicas, keep!);
  if (reason && !held) actions.push({ kind: 'updateService', env, service, name, id: keep!.id, version: keep!.version, spec: desired, reason });
  return actions;
}

function oldestFirst(services: ObservedService[]): ObservedService[] {
  return [...services].sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1));
}

/** The owned Swarm services that are the rolling berth service `service`: the uncoloured one, or the one with its name (labels may be tampered). */
export function rollingCandidates(env: string, service: string, owned: ObservedService[]): { current: ObservedService[]; mine: ObservedService[] } {
  const mine = owned.filter((s) => s.labels[LABEL_SERVICE] === service);
  const expectedName = swarmServiceName(env, service);
  return { mine, current: mine.filter((s) => s.labels[LABEL_COLOR] === undefined || s.name === expectedName) };
}

/**
 * The rolling services whose update Swarm rolled back, with the spec it rolled back from, which
 * berth then does not issue again until the spec changes. Swarm keeps no trace of that spec
 * (after an automatic rollback, Spec is the old one again and PreviousSpec is gone), so it is the
 * spec berth wanted when it first saw the rollback, provided berth had already acted on that
 * spec (the last status observed this generation): a spec changed since is one Swarm never ran.
 * The record lives in the status as long as the same rollback (same StartedAt) does.
 */
export function rolledBackUpdates(env: Environment, owned: ObservedService[], previous: EnvironmentStatus | undefined): Record<string, RolledBack> {
  const name = env.metadata.name;
  const out: Record<string, RolledBack> = {};
  for (const [service, spec] of Object.entries(env.spec.services)) {
    if (spec.strategy.type !== 'rolling') continue;
    const observed = oldestFirst(rollingCandidates(name, service, owned).current)[0];
    const update = observed?.updateStatus;
    if (!observed || !update || !isRollback(update)) continue;
    const desired = buildServiceSpec(name, service, spec);
    if (runsVersion(observed, desired)) continue; // rolled back to what the spec asks for
    const known = previous?.services[service]?.rolledBack;
    if (known && known.since === update.startedAt) out[service] = { ...known, message: update.message };
    else if (previous?.observedGeneration === env.metadata.generation) {
      out[service] = { specHash: desired.Labels![LABEL_SPEC_HASH]!, image: spec.image, message: update.message, since: update.startedAt };
    }
  }
  return out;
}

/**
 * Why the observed service differs from the desired one, or undefined when it does not. A replica
 * count that differs (the spec was resized, or someone ran `docker service scale`) is an update of
 * the same version in place: the same spec and hash at the new count, so Swarm only scales.
 */
function updateReason(desired: DockerServiceSpec, replicas: number, observed: ObservedService): UpdateReason | undefined {
  if (!runsVersion(observed, desired)) return 'spec-changed';
  if (observed.replicas !== replicas) return 'replicas-drifted';
  // The hash was compared above (a label from an older berth is still the same version). The
  // installation label is stamped on every write by the Swarm adapter (installation-swarm.ts).
  const desiredLabels = desired.Labels ?? {};
  if (observed.labels[LABEL_INSTALLATION] === undefined) return 'adopted';
  const tampered =
    Object.entries(desiredLabels).some(([k, v]) => k !== LABEL_SPEC_HASH && observed.labels[k] !== v) ||
    Object.keys(observed.labels).some((k) => k.startsWith('berth.') && k !== LABEL_INSTALLATION && !(k in desiredLabels));
  return tampered ? 'labels-tampered' : undefined;
}

/**
 * Rolling services: create, update or remove so that the owned services match the spec.
 * Blue-green services are left alone here (both colours): the blue-green module owns them.
 * An owned service whose berth.service is no longer in the spec is removed; a service without
 * berth's label is never looked at, whatever its name.
 */
export function planRollingServices(
  env: string,
  services: Record<string, ServiceSpec>,
  owned: ObservedService[],
  rolledBack: Record<string, RolledBack> = {},
): Action[] {
  const actions: Action[] = [];
  for (const [name, spec] of Object.entries(services).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (spec.strategy.type !== 'rolling') continue;
    const { mine, current } = rollingCandidates(env, name, owned);
    // A coloured leftover (the service was blue-green before) goes once the rolling one exists.
    const leftovers = current.length > 0 ? mine.filter((s) => !current.includes(s)) : [];
    for (const s of leftovers) actions.push({ kind: 'removeService', env, service: name, name: s.name, id: s.id, reason: 'strategy changed to rolling' });
    actions.push(...planService(env, name, spec, current, rolledBack[name]));
  }
  for (const s of owned) {
    const service = s.labels[LABEL_SERVICE];
    if (service !== undefined && services[service]) continue;
    actions.push({ kind: 'removeService', env, service: service ?? '', name: s.name, id: s.id, reason: 'not in the environment spec' });
  }
  return actions;
}

/** An environment being deleted removes every service it owns. */
export function planRemoveAll(env: string, services: ObservedService[]): Action[] {
  return ownedServices(env, services).map((s) => ({
    kind: 'removeService' as const,
    env,
    service: s.labels[LABEL_SERVICE] ?? '',
    name: s.name,
    id: s.id,
    reason: 'environment deleted',
  }));
}
