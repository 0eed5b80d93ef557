import { parseDuration, type PromotionGate, type ApprovalRequest, type EnvironmentStatus, type PromotedRelease, type PromotionSpec, type RollbackRequest } from '../../api/index.js';
import { parseImageReference, pinnedReference, repositoryOf } from '../../registry/reference.js';


export interface PromotionInput {
  env: string;
  spec: PromotionSpec;
  /** The environment's own services and the images their spec names. */
  own: Record<string, string>;
  upstream: Pick<EnvironmentStatus, 'phase' | 'release'> | undefined;
  promoted: PromotedRelease | undefined;
  approval: ApprovalRequest | undefined;
  rollback: RollbackRequest | undefined;
  /** The verify check of the candidate, once run in this pass. */
  verified?: { ok: boolean; message: string };
  now: Date;
}

export interface PromotionDecision {
  /** Per own service: the image to run instead of the spec's (promoted, or pinned by a rollback). */
  images: Record<string, string>;
  /** The upstream release promoted in this pass. */
  promote?: PromotedRelease;
  /** The upstream release that waits, at which gate, and when to look again (soak). */
  pending?: { gate: PromotionGate; release?: string; message: string; retryInMs?: number };
  /** Run the verify check on the upstream's route now, then decide again with its result. */
  verify?: true;
  /** The rollback that pins the images, while it holds. */
  rollback?: RollbackRequest;
}

/**
 * What an environment with `spec.promotion` runs, and whether its upstream's current release is
 * promoted now. Pure: the caller reads the upstream's status, the requests and the verify check.
 */
export function decidePromotion(i: PromotionInput): PromotionDecision {
  const rollback = activeRollback(i);
  const images = currentImages(i);
  const held = (pending: NonNullable<PromotionDecision['pending']>, extra: Partial<PromotionDecision> = {}): PromotionDecision => ({
    images,
    pending,
    ...(rollback ? { rollback } : {}),
    ...extra,
  });
  const from = i.spec.from;
  const candidate = i.upstream?.release;
  if (!candidate) return held({ gate: 'upstream', message: `${from} has no release yet` });
  if (candidate.id === i.promoted?.release) return { images, ...(rollback ? { rollback } : {}) };
  const release = candidate.id;
  if (i.upstream?.phase !== 'Ready') return held({ gate: 'upstream', release, message: `${from} is ${i.upstream?.phase ?? 'gone'}, not Ready with release ${release}` });
  const soakLeft = Date.parse(candidate.readySince) + parseDuration(i.spec.soak) - i.now.getTime();
  if (soakLeft > 0) return held({ gate: 'soak', release, message: `release ${release} soaks in ${from} for ${Math.ceil(soakLeft / 1000)}s more`, retryInMs: soakLeft });
  if (i.spec.verify) {
    if (!i.verified) return held({ gate: 'verify', release, message: `verifying release ${release} on ${from}'s route` }, { verify: true });
    if (!i.verified.ok) return held({ gate: 'verify', release, message: `release ${release} fails verify on ${from}: ${i.verified.message}` });
  }
  const approved = i.approval?.release === release ? i.approval : undefined;
  if (i.spec.approval === 'manual' && !approved) {
    return held({ gate: 'approval', release, message: `release ${release} from ${from} waits for: berth approve env ${i.env} --release ${release}` });
  }
  const promoted: PromotedRelease = {
    release,
    images: promotedImages(candidate.images, i.own),
    from,
    at: i.now.toISOString(),
    ...(approved ? { approvedBy: approved.by, approvedAt: approved.at } : { approvedBy: 'auto', approvedAt: i.now.toISOString() }),
  };
  return { images: pick(promoted.images, i.own), promote: promoted };
}

/** A rollback holds while the environment's last promotion is the one it rolled back from. */
function activeRollback(i: Pick<PromotionInput, 'rollback' | 'promoted'>): RollbackRequest | undefined {
  return i.rollback && i.promoted && i.rollback.from === i.promoted.release ? i.rollback : undefined;
}

/** The images the environment runs when nothing new is promoted: the rollback's, else the last promotion's. */
export function currentImages(i: Pick<PromotionInput, 'rollback' | 'promoted' | 'own'>): Record<string, string> {
  return pick(activeRollback(i)?.images ?? i.promoted?.images ?? {}, i.own);
}

/**
 * Services are matched by name: each of ours the upstream runs takes its digest, in our own
 * repository (the digest names the content; the repository is where our nodes pull from).
 */
export function promotedImages(upstream: Record<string, string>, own: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [svc, ownImage] of Object.entries(own)) {
    const theirs = upstream[svc];
    if (!theirs) continue;
    const digest = parseImageReference(theirs).digest;
    out[svc] = digest ? pinnedReference(repositoryOf(ownImage), digest) : theirs;
  }
  return out;
}

/** The images of services we have. */
function pick(images: Record<string, string>, own: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(images).filter(([svc]) => svc in own));
}
