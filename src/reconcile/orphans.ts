import type { Condition, EnvironmentStatus } from '../api/status.js';

/**
 * An environment whose key vanished without a deletion mark (a raw `etcdctl del`, a restored
 * backup) while this installation still owns objects of it. Its deletion waits:
 * - GracePeriod: for `--orphan-grace` after the key went (the key may come back);
 * - LastEnvironment: deleting would leave this installation with no environment at all;
 * - MassDeletion: more than a quarter of the installation's environments are orphaned at once.
 * Held until the key comes back (its services are adopted unchanged) or `berth gc --confirm`.
 */
export const ORPHANED = 'Orphaned';
export const ORPHAN_HOLDS = ['GracePeriod', 'LastEnvironment', 'MassDeletion'] as const;
export type OrphanHold = (typeof ORPHAN_HOLDS)[number];

export interface OrphanFacts {
  /** When the key was first seen missing. */
  since: Date;
  now: Date;
  graceMs: number;
  /** `berth gc --confirm` released it. */
  released: boolean;
  /** Environment keys in etcd. */
  environments: number;
  /** Orphaned environments that still own objects, this one included. */
  orphans: number;
}

export type OrphanDecision = { delete: true; why: string } | { delete: false; hold: OrphanHold; message: string; recheckAfterMs?: number };

/** Whether an orphan's objects go now. Pure; the brake looks at every orphan together, so a mass deletion is held as one. */
export function decideOrphan(f: OrphanFacts): OrphanDecision {
  if (f.released) return { delete: true, why: 'released by berth gc --confirm' };
  const deadline = f.since.getTime() + f.graceMs;
  const until = 'until its key comes back (berth apply) or berth gc --confirm';
  if (f.now.getTime() < deadline) {
    return {
      delete: false,
      hold: 'GracePeriod',
      message: `key missing without a deletion mark since ${f.since.toISOString()}; its objects are removed at ${new Date(deadline).toISOString()} unless the key comes back (berth apply), or now with berth gc --confirm`,
      recheckAfterMs: deadline - f.now.getTime(),
    };
  }
  if (f.environments === 0) return { delete: false, hold: 'LastEnvironment', message: `no environment key is left in etcd: deletion held ${until}` };
  const total = f.environments + f.orphans;
  if (f.orphans * 4 > total) {
    return { delete: false, hold: 'MassDeletion', message: `${f.orphans} of ${total} environments lost their keys at once (more than a quarter): deletion held ${until}` };
  }
  return { delete: true, why: `key missing for longer than the orphan grace (${Math.round(f.graceMs / 1000)}s)` };
}

export function orphanedCondition(status: EnvironmentStatus | undefined): Condition | undefined {
  return status?.conditions.find((c) => c.type === ORPHANED && c.status === 'True');
}

/** The status without the orphan record: the key came back. */
export function withoutOrphaned(status: EnvironmentStatus): EnvironmentStatus {
  return { ...status, conditions: status.conditions.filter((c) => c.type !== ORPHANED) };
}
