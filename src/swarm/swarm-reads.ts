import type { SwarmApi, SwarmEvent } from './api.js';
import type { NodeIndex } from './node-index.js';
import type { ObservedNode, ObservedService, ObservedTask } from './model.js';
import type { DockerServiceSpec } from './service-spec.js';

/**
 * A Swarm adapter that wraps another and guards only its writes (fencing, ownership): every read
 * passes through unchanged, so a wrapper states nothing but the writes it cares about.
 */
export abstract class SwarmReads implements SwarmApi {
  constructor(protected readonly inner: SwarmApi) {}

  abstract updateNodeLabels(id: string, version: number, labels: Record<string, string>): Promise<void>;
  abstract createService(spec: DockerServiceSpec): Promise<string>;
  abstract updateService(id: string, version: number, spec: DockerServiceSpec): Promise<void>;
  abstract scaleService(id: string, version: number, replicas: number): Promise<void>;
  abstract removeService(id: string): Promise<void>;

  listNodes(): Promise<ObservedNode[]> {
    return this.inner.listNodes();
  }

  nodeIndex(): Promise<NodeIndex> {
    return this.inner.nodeIndex();
  }

  inspectNode(id: string): Promise<ObservedNode | undefined> {
    return this.inner.inspectNode(id);
  }

  listNodesById(ids: string[]): Promise<ObservedNode[]> {
    return this.inner.listNodesById(ids);
  }

  listServices(env?: string): Promise<ObservedService[]> {
    return this.inner.listServices(env);
  }

  inspectService(id: string): Promise<ObservedService | undefined> {
    return this.inner.inspectService(id);
  }

  listServicesById(ids: string[]): Promise<ObservedService[]> {
    return this.inner.listServicesById(ids);
  }

  listTasks(serviceIds: string[]): Promise<ObservedTask[]> {
    return this.inner.listTasks(serviceIds);
  }

  listRunningTasks(): Promise<ObservedTask[]> {
    return this.inner.listRunningTasks();
  }

  watchEvents(onEvent: (e: SwarmEvent) => void, signal: AbortSignal, onReconnect?: () => void): Promise<void> {
    return this.inner.watchEvents(onEvent, signal, onReconnect);
  }
}
