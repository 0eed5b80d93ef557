import { parseDuration, type Environment, type ResolvedImage, type ServiceSpec } from '../../api/index.js';
import { parseImageReference, pinnedReference } from '../../registry/reference.js';
import { specHash } from '../../swarm/service-spec.js';

/**
 * What identifies a service's spec for resolving its tag: everything but the replica count
 * (resizing is not a release, so it does not move a tag either).
 */
export function resolutionKey(spec: ServiceSpec): string {
  const { replicas: _replicas, ...rest } = spec;
  return specHash(rest);
}

/** A spec image already pinned by digest is run as written. */
function isPinned(spec: ServiceSpec): boolean {
  return parseImageReference(spec.image).digest !== undefined;
}

/** The known resolution that still holds for the service's current spec, if any. */
export function currentResolution(spec: ServiceSpec, known: ResolvedImage | undefined): ResolvedImage | undefined {
  return known && known.specHash === resolutionKey(spec) && known.ref === spec.image ? known : undefined;
}

/** Milliseconds until the service's tag must be resolved (again); 0 when due now; undefined when never. */
export function resolveDueInMs(spec: ServiceSpec, known: ResolvedImage | undefined, now: Date): number | undefined {
  if (isPinned(spec)) return undefined;
  const current = currentResolution(spec, known);
  if (!current) return 0;
  if (!spec.track) return undefined;
  return Math.max(0, Date.parse(current.resolvedAt) + parseDuration(spec.track) - now.getTime());
}

/** The services whose tag is resolved in this pass: new or changed specs, and tracked tags whose period ran out. */
export function resolutionsDue(services: Record<string, ServiceSpec>, known: Record<string, ResolvedImage> | undefined, now: Date): string[] {
  return Object.entries(services)
    .filter(([svc, spec]) => resolveDueInMs(spec, known?.[svc], now) === 0)
    .map(([svc]) => svc)
    .sort();
}

/** The soonest tracking re-resolution after this pass, for the requeue. */
export function nextResolutionInMs(services: Record<string, ServiceSpec>, known: Record<string, ResolvedImage> | undefined, now: Date): number | undefined {
  const due = Object.entries(services)
    .map(([svc, spec]) => resolveDueInMs(spec, known?.[svc], now))
    .filter((ms): ms is number => ms !== undefined);
  return due.length > 0 ? Math.min(...due) : undefined;
}

export type ResolveOutcome = { digest: string } | { error: string };

export interface Resolutions {
  /** Every service's resolution that holds after this pass (those of services gone from the spec dropped). */
  images: Record<string, ResolvedImage>;
  /** Services that could not be resolved and have no digest for their spec: nothing of the environment may change. */
  blocking: { service: string; message: string }[];
  /** Tracked services whose refresh failed: they keep running the digest they had. */
  stale: { service: string; message: string }[];
}

/** Folds this pass's registry answers into the known resolutions. Pure. */
export function mergeResolutions(
  services: Record<string, ServiceSpec>,
  known: Record<string, ResolvedImage> | undefined,
  outcomes: Record<string, ResolveOutcome>,
  now: Date,
): Resolutions {
  const images: Record<string, ResolvedImage> = {};
  const blocking: Resolutions['blocking'] = [];
  const stale: Resolutions['stale'] = [];
  for (const [svc, spec] of Object.entries(services)) {
    const current = currentResolution(spec, known?.[svc]);
    const outcome = outcomes[svc];
    if (outcome && 'digest' in outcome) {
      // A tracked tag that still points at the same digest keeps its record but restarts its period.
      images[svc] = { ref: spec.image, digest: outcome.digest, specHash: resolutionKey(spec), resolvedAt: now.toISOString() };
    } else if (outcome) {
      if (current) {
        images[svc] = current;
        stale.push({ service: svc, message: outcome.error });
      } else blocking.push({ service: svc, message: outcome.error });
    } else if (current) images[svc] = current;
  }
  return { images, blocking, stale };
}

/** The environment as Swarm should run it: each resolved service's image pinned to its digest. */
export function pinEnvironment(env: Environment, images: Record<string, ResolvedImage>): Environment {
  const services = Object.fromEntries(
    Object.entries(env.spec.services).map(([svc, spec]) => {
      const resolved = currentResolution(spec, images[svc]);
      return [svc, resolved ? { ...spec, image: pinnedReference(spec.image, resolved.digest) } : spec];
    }),
  );
  return { ...env, spec: { ...env.spec, services } };
}
