import { parseDuration, type Environment, type ResolvedImage } from '../../api/index.js';
import { parseImageReference, pinnedReference } from '../../registry/reference.js';
import { specHash } from '../../swarm/service-spec.js';

/** What pinning needs of a service's or a job's spec. */
export interface Pinnable {
  image: string;
  track?: string | undefined;
  replicas?: number;
}

/**
 * The digest a registry notification last reported pushed under the reference's repository and
 * tag (registry-pushes.ts), if any: a faster trigger than the `track` period.
 */
export type PushedDigest = (ref: string) => string | undefined;

/**
 * What identifies a spec for resolving its tag: everything but a service's replica count
 * (resizing is not a release, so it does not move a tag either).
 */
export function resolutionKey(spec: Pinnable): string {
  const { replicas: _replicas, ...rest } = spec;
  return specHash(rest);
}

/** A spec image already pinned by digest is run as written. */
function isPinned(spec: Pinnable): boolean {
  return parseImageReference(spec.image).digest !== undefined;
}

/** The known resolution that still holds for the current spec, if any. */
export function currentResolution(spec: Pinnable, known: ResolvedImage | undefined): ResolvedImage | undefined {
  return known && known.specHash === resolutionKey(spec) && known.ref === spec.image ? known : undefined;
}

/** Milliseconds until the tag must be resolved (again); 0 when due now; undefined when never. */
export function resolveDueInMs(spec: Pinnable, known: ResolvedImage | undefined, now: Date): number | undefined {
  if (isPinned(spec)) return undefined;
  const current = currentResolution(spec, known);
  if (!current) return 0;
  if (!spec.track) return undefined;
  return Math.max(0, Date.parse(current.resolvedAt) + parseDuration(spec.track) - now.getTime());
}

/**
 * A tracked tag that the registry notified as pushed with another digest than the one we run.
 * Once resolved again it matches, so a notification triggers one look-up, not one per pass.
 */
function pushedElsewhere(spec: Pinnable, known: ResolvedImage | undefined, pushed: PushedDigest | undefined): boolean {
  const current = spec.track && pushed ? currentResolution(spec, known) : undefined;
  const digest = current ? pushed!(spec.image) : undefined;
  return digest !== undefined && digest !== current!.digest;
}

/**
 * The services (or jobs) whose tag is resolved in this pass: new or changed specs, tracked tags
 * whose period ran out, and tracked tags a registry notification says were pushed elsewhere.
 */
export function resolutionsDue(services: Record<string, Pinnable>, known: Record<string, ResolvedImage> | undefined, now: Date, pushed?: PushedDigest): string[] {
  return Object.entries(services)
    .filter(([svc, spec]) => resolveDueInMs(spec, known?.[svc], now) === 0 || pushedElsewhere(spec, known?.[svc], pushed))
    .map(([svc]) => svc)
    .sort();
}

/**
 * The soonest tracking re-resolution after this pass, for the requeue. Notifications do not
 * count: one that the registry's answer does not confirm must not make the reconcile spin.
 */
export function nextResolutionInMs(services: Record<string, Pinnable>, known: Record<string, ResolvedImage> | undefined, now: Date): number | undefined {
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
  services: Record<string, Pinnable>,
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

/** Each spec whose resolution holds, its image pinned to the digest. */
function pinAll<S extends Pinnable>(specs: Record<string, S>, images: Record<string, ResolvedImage>): Record<string, S> {
  return Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => {
      const resolved = currentResolution(spec, images[name]);
      return [name, resolved ? { ...spec, image: pinnedReference(spec.image, resolved.digest) } : spec];
    }),
  );
}

/** The environment as Swarm should run it: each resolved service's and job's image pinned to its digest. */
export function pinEnvironment(env: Environment, images: Record<string, ResolvedImage>, jobImages: Record<string, ResolvedImage> = {}): Environment {
  return { ...env, spec: { ...env.spec, services: pinAll(env.spec.services, images), jobs: pinAll(env.spec.jobs, jobImages) } };
}
