import type { Logger } from 'pino';
import type { Environment, EnvironmentStatus, PromotedRelease, RollbackRequest } from '../../api/index.js';
import type { BerthMetrics } from '../../metrics/registry.js';
import { parseImageReference, repositoryOf } from '../../registry/reference.js';
import type { ImageTagger, ReleaseRequestReader, StatusWriter } from '../ports.js';
import { currentImages, decidePromotion, type PromotionDecision } from './promotion.js';

/** The `verify` check: GET each URL, every answer must have the expected status. */
export type VerifyFn = (urls: string[], expect: number) => Promise<{ ok: boolean; message: string }>;

export interface PromotionDeps {
  status: Pick<StatusWriter, 'getEnvironmentStatus'>;
  requests: ReleaseRequestReader;
  verify: VerifyFn;
  tagger?: ImageTagger;
  metrics?: BerthMetrics;
  log: Logger;
  now: () => Date;
  /** While an upstream release waits at a gate (or none is new), look again this often. */
  pollMs: number;
}

export interface PromotionOutcome {
  /** The spec with the promoted (or rolled-back) images in place of the spec's own. */
  env: Environment;
  /** status.promoted after this pass. */
  promoted: PromotedRelease | undefined;
  pending: PromotionDecision['pending'];
  rollback: RollbackRequest | undefined;
  requeueAfterMs: number;
}

/**
 * Reads what a promotion decision needs (the upstream's status, the approve/rollback requests,
 * the verify check when its turn comes), decides, and carries out a promotion: marks the
 * digests (`markTag`) first, so a promotion is recorded only once its tag is in the registry.
 */
export async function runPromotion(env: Environment, previous: EnvironmentStatus | undefined, d: PromotionDeps): Promise<PromotionOutcome | undefined> {
  const spec = env.spec.promotion;
  if (!spec) return undefined;
  const name = env.metadata.name;
  const [upstream, approval, rollback] = await Promise.all([d.status.getEnvironmentStatus(spec.from), d.requests.readApproval(name), d.requests.readRollback(name)]);
  const own = Object.fromEntries(Object.entries(env.spec.services).map(([svc, s]) => [svc, s.image]));
  const input = { env: name, spec, own, upstream, promoted: previous?.promoted, approval, rollback, now: d.now() };
  let decision = decidePromotion(input);
  if (decision.verify && spec.verify && upstream) {
    const urls = Object.values(upstream.services).flatMap((s) => (s.route?.servers ?? []).map((server) => `http://${server}${spec.verify!.http.path}`));
    const verified = urls.length > 0 ? await d.verify(urls, spec.verify.http.expect) : { ok: false, message: `${spec.from} has no route servers to check` };
    decision = decidePromotion({ ...input, verified });
  }
  let promoted = previous?.promoted;
  let pending = decision.pending;
  let images = decision.images;
  if (decision.promote) {
    const failed = spec.markTag ? await markTag(decision.promote, upstream!.release!.images, spec.markTag, d) : undefined;
    if (failed) {
      d.metrics?.promotionsTotal.inc({ env: name, result: 'failed' });
      pending = { gate: 'markTag', release: decision.promote.release, message: `release ${decision.promote.release}: markTag ${spec.markTag} failed, retried: ${failed}` };
      images = currentImages(input);
    } else {
      promoted = decision.promote;
      const leadSeconds = (d.now().getTime() - Date.parse(upstream!.release!.readySince)) / 1000;
      d.metrics?.promotionsTotal.inc({ env: name, result: 'promoted' });
      d.metrics?.promotionLeadTime.observe(leadSeconds);
      d.log.info({ release: promoted.release, from: promoted.from, approvedBy: promoted.approvedBy, images: promoted.images, leadSeconds }, 'release promoted');
    }
  }
  const services = Object.fromEntries(
    Object.entries(env.spec.services).map(([svc, s]) => [svc, images[svc] ? { ...s, image: images[svc] } : s]),
  );
  return {
    env: { ...env, spec: { ...env.spec, services } },
    promoted,
    pending,
    rollback: decision.rollback,
    requeueAfterMs: Math.min(d.pollMs, pending?.retryInMs ?? d.pollMs),
  };
}

/** Tags each promoted digest in the upstream image's repository; the first failure's message, if any. */
async function markTag(promote: PromotedRelease, upstreamImages: Record<string, string>, tag: string, d: PromotionDeps): Promise<string | undefined> {
  if (!d.tagger) return 'no registry client';
  try {
    for (const svc of Object.keys(promote.images)) {
      const source = upstreamImages[svc]!;
      const digest = parseImageReference(source).digest;
      if (!digest) continue;
      await d.tagger.tagDigest(repositoryOf(source), digest, tag);
      d.log.info({ service: svc, repository: repositoryOf(source), digest, tag }, 'promoted digest tagged');
    }
    return undefined;
  } catch (err) {
    d.log.warn({ err: (err as Error).message, tag }, 'markTag failed: promotion retried');
    return (err as Error).message;
  }
}

/** The default verify: one GET per URL, in parallel, each with a short deadline. */
export const httpVerify: VerifyFn = async (urls, expect) => {
  const answers = await Promise.all(
    urls.map(async (url) => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(3_000) });
        await res.arrayBuffer();
        return res.status === expect ? undefined : `${url}: HTTP ${res.status}`;
      } catch (err) {
        return `${url}: ${(err as Error).message}`;
      }
    }),
  );
  const bad = answers.filter((a): a is string => a !== undefined);
  return bad.length === 0 ? { ok: true, message: `${urls.length} answered ${expect}` } : { ok: false, message: `expected ${expect}: ${bad.join('; ')}` };
};
