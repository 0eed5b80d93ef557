import type { Logger } from 'pino';
import type { Environment, EnvironmentStatus, ResolvedImage } from '../../api/index.js';
import type { ImageResolver } from '../ports.js';
import { mergeResolutions, nextResolutionInMs, pinEnvironment, resolutionsDue, type Pinnable, type PushedDigest, type ResolveOutcome, type Resolutions } from './pinning.js';

export interface PinnedEnvironment extends Resolutions {
  /** The spec with every resolved image pinned (`repo:tag@sha256:…`): what the planner, blue-green and jobs act on. */
  env: Environment;
  /** Per job: its tag resolved (status.jobImages); `images` holds the services'. */
  jobImages: Record<string, ResolvedImage>;
  /** When a tracked tag is due again. */
  nextResolveMs: number | undefined;
}

/**
 * Resolves the tags due in this pass, of services and jobs alike (one registry call per distinct
 * reference), and pins the environment's images. Without a resolver (unit tests, the simulator)
 * images run as written. `pushed`: what registry notifications reported, to re-resolve a tracked
 * tag at once instead of at the end of its period.
 */
export async function resolveImages(
  env: Environment,
  previous: EnvironmentStatus | undefined,
  resolver: ImageResolver | undefined,
  now: Date,
  log: Logger,
  pushed?: PushedDigest,
): Promise<PinnedEnvironment> {
  if (!resolver) return { env, images: {}, jobImages: {}, blocking: [], stale: [], nextResolveMs: undefined };
  const groups = [
    { kind: 'service', specs: env.spec.services as Record<string, Pinnable>, known: previous?.images, label: (name: string) => name },
    { kind: 'job', specs: env.spec.jobs as Record<string, Pinnable>, known: previous?.jobImages, label: (name: string) => `job ${name}` },
  ];
  const due = groups.map((g) => resolutionsDue(g.specs, g.known, now, pushed));
  const refs = [...new Set(groups.flatMap((g, i) => due[i]!.map((name) => g.specs[name]!.image)))];
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
  const [services, jobs] = groups.map((g, i) => {
    const outcomes = Object.fromEntries(due[i]!.map((name) => [name, answers.get(g.specs[name]!.image)!]));
    const merged = mergeResolutions(g.specs, g.known, outcomes, now);
    for (const name of due[i]!) {
      const before = g.known?.[name];
      const after = merged.images[name];
      if (after && after.digest !== before?.digest) log.info({ [g.kind]: name, image: after.ref, digest: after.digest, from: before?.digest }, 'image resolved');
    }
    const relabel = (u: { service: string; message: string }) => ({ service: g.label(u.service), message: u.message });
    return { images: merged.images, blocking: merged.blocking.map(relabel), stale: merged.stale.map(relabel) };
  }) as [Resolutions, Resolutions];
  const blocking = [...services.blocking, ...jobs.blocking];
  const stale = [...services.stale, ...jobs.stale];
  for (const u of [...blocking, ...stale]) log.warn({ image: u.service, err: u.message }, 'image not resolved');
  const next = [nextResolutionInMs(groups[0]!.specs, services.images, now), nextResolutionInMs(groups[1]!.specs, jobs.images, now)].filter((ms): ms is number => ms !== undefined);
  return {
    env: pinEnvironment(env, services.images, jobs.images),
    images: services.images,
    jobImages: jobs.images,
    blocking,
    stale,
    nextResolveMs: next.length > 0 ? Math.min(...next) : undefined,
  };
}
