import type { Logger } from 'pino';
import type { Environment, EnvironmentStatus } from '../../api/index.js';
import type { ImageResolver } from '../ports.js';
import { mergeResolutions, nextResolutionInMs, pinEnvironment, resolutionsDue, type ResolveOutcome, type Resolutions } from './pinning.js';

export interface PinnedEnvironment extends Resolutions {
  /** The spec with every resolved image pinned (`repo:tag@sha256:…`): what the planner and blue-green act on. */
  env: Environment;
  /** When a tracked tag is due again. */
  nextResolveMs: number | undefined;
}

/**
 * Resolves the tags due in this pass (one registry call per distinct reference) and pins the
 * environment's images. Without a resolver (unit tests, the simulator) images run as written.
 */
export async function resolveImages(env: Environment, previous: EnvironmentStatus | undefined, resolver: ImageResolver | undefined, now: Date, log: Logger): Promise<PinnedEnvironment> {
  const services = env.spec.services;
  if (!resolver) return { env, images: {}, blocking: [], stale: [], nextResolveMs: undefined };
  const known = previous?.images;
  const due = resolutionsDue(services, known, now);
  const refs = [...new Set(due.map((svc) => services[svc]!.image))];
  const answers = new Map(
    await Promise.all(
      refs.map(async (ref): Promise<[string, ResolveOutcome]> => {
        try {
          return [ref, { digest: await resolver.resolveDigest(ref) }];
        } catch (err) {
          return [ref, { error: (err as Error).message }];
        }
      }),
    ),
  );
  const outcomes = Object.fromEntries(due.map((svc) => [svc, answers.get(services[svc]!.image)!]));
  const merged = mergeResolutions(services, known, outcomes, now);
  for (const svc of due) {
    const before = known?.[svc];
    const after = merged.images[svc];
    if (after && after.digest !== before?.digest) log.info({ service: svc, image: after.ref, digest: after.digest, from: before?.digest }, 'image resolved');
  }
  for (const u of [...merged.blocking, ...merged.stale]) log.warn({ service: u.service, err: u.message }, 'image not resolved');
  return { ...merged, env: pinEnvironment(env, merged.images), nextResolveMs: nextResolutionInMs(services, merged.images, now) };
}
