/**
 * Leader election among controller replicas (controller-runtime's leaderelection): one holds
 * the lease and works, the others wait to take over.
 */
export interface LeaderElection {
  readonly identity: string;
  /**
   * Resolves once elected; rejects if `signal` aborts first. `onLost` runs if the lease is
   * lost after that (not when `signal` aborts).
   */
  elect(signal: AbortSignal, onLost: (err: Error) => void): Promise<void>;
  /** Gives the lease up so a standby takes over at once instead of after the lease expires. */
  resign(): Promise<void>;
}
