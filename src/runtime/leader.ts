import type { Fence } from '../store/fence.js';
import type { LeaseGuard } from '../swarm/fenced-swarm.js';

/**
 * One term of leadership. It ends (`signal` aborts) when the lease is not known to be held
 * any more (keepalives unanswered for its TTL: a paused process, a paused or unreachable
 * etcd), when etcd says the lease is gone, or when a fenced write finds the leader key stale.
 */
export interface Leadership extends Fence, LeaseGuard {
  readonly signal: AbortSignal;
  /** Gives the lease up so a standby takes over at once instead of after the lease expires. */
  resign(): Promise<void>;
}

/**
 * Leader election among controller replicas (controller-runtime's leaderelection): one holds
 * the lease and works, the others wait to take over.
 */
export interface LeaderElection {
  readonly identity: string;
  /**
   * Campaigns until elected, through any etcd failure (a standby never gives up); rejects
   * only when `signal` aborts first.
   */
  campaign(signal: AbortSignal): Promise<Leadership>;
}
