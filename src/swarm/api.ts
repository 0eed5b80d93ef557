import type { ObservedNode, ObservedService, ObservedTask } from './model.js';
import type { NodeIndex } from './node-index.js';
import type { DockerServiceSpec } from './service-spec.js';

/** A Swarm change worth reconciling for; `labels` are the actor's attributes (service labels etc.). */
export interface SwarmEvent {
  type: 'service' | 'node' | 'task' | 'container';
  action: string;
  id: string;
  attributes: Record<string, string>;
}

/**
 * The few Swarm operations the controller needs, behind an interface so the planner and the
 * reconciler are tested against an in-memory fake (test/support/fake-swarm.ts).
 * Every method throws AdapterError on failure.
 */
export interface SwarmApi {
  listNodes(): Promise<ObservedNode[]>;
  /** The same nodes, by id and by claim. */
  nodeIndex(): Promise<NodeIndex>;
  /** undefined when the node is gone. */
  inspectNode(id: string): Promise<ObservedNode | undefined>;
  /**
   * The nodes of `ids` that exist, in one call; a node absent from the answer is gone. Docker
   * matches each id as a prefix (a full id matches only itself): the answer may hold nodes whose
   * id merely starts with one asked for, which the caller leaves out.
   */
  listNodesById(ids: string[]): Promise<ObservedNode[]>;
  /** Replaces the node's labels; `version` guards against a concurrent update (409 → conflict). */
  updateNodeLabels(id: string, version: number, labels: Record<string, string>): Promise<void>;
  /** Services carrying label `berth.env` (any value), or `berth.env=<env>` when env is given. */
  listServices(env?: string): Promise<ObservedService[]>;
  inspectService(id: string): Promise<ObservedService | undefined>;
  /**
   * The services of `ids` that exist, in one call, berth's or not (no label filter); a service
   * absent from the answer is gone. Ids match as prefixes, as for `listNodesById`.
   */
  listServicesById(ids: string[]): Promise<ObservedService[]>;
  createService(spec: DockerServiceSpec): Promise<string>;
  updateService(id: string, version: number, spec: DockerServiceSpec): Promise<void>;
  /** Sets only the replica count, keeping the rest of the service's spec (and its labels) as it is. */
  scaleService(id: string, version: number, replicas: number): Promise<void>;
  /** Removing a service that is already gone is not an error. */
  removeService(id: string): Promise<void>;
  listTasks(serviceIds: string[]): Promise<ObservedTask[]>;
  /** Every task of the Swarm whose desired state is running, in one call (a relist's). */
  listRunningTasks(): Promise<ObservedTask[]>;
  /**
   * Streams service/node/task/container events until `signal` aborts, reconnecting after a
   * dropped stream. `onReconnect` runs after each reconnect: events may have been missed, so the
   * caller resyncs.
   */
  watchEvents(onEvent: (e: SwarmEvent) => void, signal: AbortSignal, onReconnect?: () => void): Promise<void>;
}

export type SwarmObjectKind = 'secret' | 'config';

/**
 * Swarm secrets and configs by name: a service spec names them, Swarm wants their ids (the
 * docker CLI looks them up the same way). Reads only; their values are never asked for.
 */
export interface SwarmObjectLookup {
  /** The ids of those of `names` that exist, by name. */
  findObjectIds(kind: SwarmObjectKind, names: string[]): Promise<Map<string, string>>;
}
