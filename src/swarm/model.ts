import type { NodeIndex } from './node-index.js';

/**
 * What berth observes of a Swarm, reduced to the fields its planning needs. The swarm adapter
 * builds these from Docker API objects; the planner and tests only ever see these shapes.
 */

export type NodeState = 'ready' | 'down' | 'unknown' | 'disconnected';
export type NodeAvailability = 'active' | 'pause' | 'drain';

export interface ObservedNode {
  id: string;
  hostname: string;
  /** The node's address (Status.Addr): where host-mode published ports are reached. */
  addr: string;
  role: 'manager' | 'worker';
  state: NodeState;
  availability: NodeAvailability;
  labels: Record<string, string>;
  /** Swarm object version, needed to update the node. */
  version: number;
}

export interface PublishedPort {
  target: number;
  published: number;
  protocol: 'tcp' | 'udp';
}

export interface ObservedService {
  id: string;
  name: string;
  version: number;
  labels: Record<string, string>;
  /** Replicated mode replica count. */
  replicas: number;
  image: string;
  /** Fingerprint of the container spec its tasks are made from (containerTemplate). */
  template: string;
  /** Task template env (`KEY=VALUE` strings), for debugging drift. */
  createdAt: string;
  updatedAt: string;
  /** Swarm's account of the service's last update (Docker's UpdateStatus), when it had one. */
  updateStatus?: ServiceUpdateStatus;
}

/** Docker's UpdateStatus.State. `rollback_*`: Swarm is putting back, or has put back, the spec before the update. */
export type ServiceUpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export interface ServiceUpdateStatus {
  state: ServiceUpdateState;
  message: string;
  /** When this update (or rollback) began: tells one rollback from the next. */
  startedAt: string;
}

/** Whether Swarm rolled (or is rolling) the service's last update back. */
export function isRollback(status: ServiceUpdateStatus | undefined): boolean {
  return status !== undefined && status.state.startsWith('rollback_');
}

/** Swarm task states, in the order a task passes through them. */
export type TaskState =
  | 'new' | 'allocated' | 'pending' | 'assigned' | 'accepted' | 'preparing' | 'ready' | 'starting'
  | 'running' | 'complete' | 'shutdown' | 'failed' | 'rejected' | 'remove' | 'orphaned';

/** States in which a task's container will not run (again): it completed, failed, was refused or stopped. */
export const ENDED_TASK_STATES: ReadonlySet<TaskState> = new Set(['complete', 'failed', 'rejected', 'shutdown', 'orphaned', 'remove']);

export interface ObservedTask {
  id: string;
  serviceId: string;
  nodeId: string;
  slot: number;
  desiredState: TaskState;
  /**
   * A task whose container has a healthcheck stays `starting` until the check passes, so
   * `running` with desiredState `running` means started and, where a healthcheck exists, healthy.
   */
  state: TaskState;
  /**
   * Fingerprint of the container spec the task was made from: equal to its service's `template`
   * once made from the service's current spec. Tells an update's old tasks from its new ones,
   * whether the image changed or only the environment, command or healthcheck.
   */
  template: string;
  /** Host-mode ports as Swarm assigned them (Status.PortStatus). */
  ports: PublishedPort[];
  message: string;
  error?: string;
  /** The container's exit code, once it exited (Status.ContainerStatus.ExitCode). */
  exitCode?: number;
}

export interface SwarmSnapshot {
  /** Every node of the Swarm (a pool to claim from), indexed: a reconcile reads its own by claim or id. */
  nodes: NodeIndex;
  services: ObservedService[];
  tasks: ObservedTask[];
}
