import type { SwarmApi, SwarmEvent } from './api.js';
import type { ObservedNode, ObservedService, ObservedTask } from './model.js';
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
export class FencedSwarm implements SwarmApi {
  constructor(
    private readonly swarm: SwarmApi,
    private readonly guard: LeaseGuard,
  ) {}

  async updateNodeLabels(id: string, version: number, labels: Record<string, string>): Promise<void> {
    this.guard.assertHeld('updateNode');
    return this.swarm.updateNodeLabels(id, version, labels);
  }

  async createService(spec: DockerServiceSpec): Promise<string> {
    this.guard.assertHeld('createService');
    return this.swarm.createService(spec);
  }

  async updateService(id: string, version: number, spec: DockerServiceSpec): Promise<void> {
    this.guard.assertHeld('updateService');
    return this.swarm.updateService(id, version, spec);
  }

  async scaleService(id: string, version: number, replicas: number): Promise<void> {
    this.guard.assertHeld('scaleService');
    return this.swarm.scaleService(id, version, replicas);
  }

  async removeService(id: string): Promise<void> {
    this.guard.assertHeld('removeService');
    return this.swarm.removeService(id);
  }

  listNodes(): Promise<ObservedNode[]> {
    return this.swarm.listNodes();
  }

  inspectNode(id: string): Promise<ObservedNode | undefined> {
    return this.swarm.inspectNode(id);
  }

  listServices(env?: string): Promise<ObservedService[]> {
    return this.swarm.listServices(env);
  }

  inspectService(id: string): Promise<ObservedService | undefined> {
    return this.swarm.inspectService(id);
  }

  listTasks(serviceIds: string[]): Promise<ObservedTask[]> {
    return this.swarm.listTasks(serviceIds);
  }

  listRunningTasks(): Promise<ObservedTask[]> {
    return this.swarm.listRunningTasks();
  }

  watchEvents(onEvent: (e: SwarmEvent) => void, signal: AbortSignal, onReconnect?: () => void): Promise<void> {
    return this.swarm.watchEvents(onEvent, signal, onReconnect);
  }
}
