import { createHash } from 'node:crypto';
import type { EnvironmentStatus, PromotedRelease, ReleaseRecord } from '../../api/index.js';
import { parseImageReference } from '../../registry/reference.js';

/** Releases kept in status.history, newest first. */
export const HISTORY_LIMIT = 20;

/** What identifies an image in a release: its digest, or the reference itself when it has none (no registry resolution). */
function contentOf(ref: string): string {
  return parseImageReference(ref).digest ?? ref;
}

/** Short id of a set of images: the same digests per service give the same id, whatever the repository or tag. */
export function releaseId(images: Record<string, string>): string {
  const content = Object.keys(images).sort().map((svc) => [svc, contentOf(images[svc]!)]);
  return createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, 10);
}

/**
 * The release and history after this pass. A release is recorded when the environment is Ready
 * with a set of images it was not Ready with just before; otherwise both stay as they were (a
 * Progressing environment still runs, or last ran, its release). A release promoted here carries
 * who approved it.
 */
export function nextRelease(
  previous: Pick<EnvironmentStatus, 'release' | 'history'> | undefined,
  running: Record<string, string>,
  ready: boolean,
  promoted: PromotedRelease | undefined,
  now: Date,
): Pick<EnvironmentStatus, 'release' | 'history'> {
  const kept = { ...(previous?.release ? { release: previous.release } : {}), ...(previous?.history ? { history: previous.history } : {}) };
  if (!ready || Object.keys(running).length === 0) return kept;
  const id = releaseId(running);
  if (previous?.release?.id === id) return kept;
  const attribution = promoted && runsPromoted(running, promoted) ? { from: promoted.from, ...(promoted.approvedBy ? { approvedBy: promoted.approvedBy } : {}), ...(promoted.approvedAt ? { approvedAt: promoted.approvedAt } : {}) } : {};
  const release: ReleaseRecord = { id, images: running, readySince: now.toISOString(), ...attribution };
  return { release, history: [release, ...(previous?.history ?? []).filter((h) => h.id !== id)].slice(0, HISTORY_LIMIT) };
}

/** The release to return to by default: the newest one in the history that is not the current one. */
export function previousRelease(status: Pick<EnvironmentStatus, 'release' | 'history'>): ReleaseRecord | undefined {
  return (status.history ?? []).find((h) => h.id !== status.release?.id);
}

/** Whether the running images are those promoted (services the upstream lacked may differ). */
export function runsPromoted(running: Record<string, string>, promoted: Pick<PromotedRelease, 'images'>): boolean {
  return Object.entries(promoted.images).every(([svc, image]) => running[svc] === image);
}
