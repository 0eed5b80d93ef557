import type { SwarmApi } from './api.js';
import { SwarmReads } from './swarm-reads.js';
import type { DockerServiceSpec } from './service-spec.js';

/** What a Docker mutation asks of leadership before it is issued. */
export interface LeaseGuard {
  /**
   * Throws NotLeaderError unless this process leads and its lease is known to be held for a
   * margin beyond now: a mutation issued later could land after a standby took over.
   */
  assertHeld(operation: string): void;
}

/**
 * The one place Docker mutations are fenced: each asks `guard` first. Reads pass through (a
 * standby or an ex-leader may read, never write).
 */
export class FencedSwarm extends SwarmReads {
  constructor(
    swarm: SwarmApi,
    private readonly guard: LeaseGuard,
  ) {
    super(swarm);
  }

  async updateNodeLabels(id: string, version: number, labels: Record<string, string>): Promise<void> {
    this.guard.assertHeld('updateNode');
    return this.inner.updateNodeLabels(id, version, labels);
  }

  async createService(spec: DockerServiceSpec): Promise<string> {
    this.guard.assertHeld('createService');
    return this.inner.createService(spec);
  }

  async updateService(id: string, version: number, spec: DockerServiceSpec): Promise<void> {
    this.guard.assertHeld('updateService');
    return this.inner.updateService(id, version, spec);
  }

  async scaleService(id: string, version: number, replicas: number): Promise<void> {
    this.guard.assertHeld('scaleService');
    return this.inner.scaleService(id, version, replicas);
  }

  async removeService(id: string): Promise<void> {
    this.guard.assertHeld('removeService');
    return this.inner.removeService(id);
  }
}
