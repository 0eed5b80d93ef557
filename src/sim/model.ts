/*
 * The simulator's own records of nodes, services and tasks: compact, mutable, indexed by the
 * cluster. Docker's JSON shapes are produced from them on demand (render.ts), so ten thousand
 * tasks cost a few small objects each, and a task's spec is a shared reference to the service's
 * task template of the moment it was made.
 */

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Swarm's task states, in the order a task goes through them (api/types/swarm/task.go). */
export const TASK_STATES = [
  'new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running',
  'complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

const TERMINAL: ReadonlySet<TaskState> = new Set(['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned']);
export const isTerminal = (s: TaskState): boolean => TERMINAL.has(s);

export type NodeRole = 'manager' | 'worker';
export type NodeAvailability = 'active' | 'pause' | 'drain';
export type NodeStateName = 'ready' | 'down';

export interface SimNode {
  id: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  hostname: string;
  addr: string;
  role: NodeRole;
  availability: NodeAvailability;
  labels: Record<string, string>;
  state: NodeStateName;
  leader: boolean;
  /** Ready and active: takes new tasks. Kept in step with state and availability. */
  available: boolean;
  /** Spec.Name, set by a node update; empty by default as in Docker. */
  specName: string;
}

export type UpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export interface SimService {
  id: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  spec: Json;
  previousSpec?: Json;
  /** Raised when the task template or endpoint changes: tasks made before are out of date. */
  specVersion: number;
  updateStatus?: { state: UpdateState; startedAt: number; completedAt?: number; message: string };
  /** Endpoint.Ports: the spec's ports, ingress ones with the published port Swarm allocated. */
  endpointPorts: Json[];
}

export interface PublishedPort {
  protocol: string;
  target: number;
  published: number;
  mode: 'host' | 'ingress';
}

export interface SimTask {
  id: string;
  version: number;
  createdAt: number;
  updatedAt: number;
  serviceId: string;
  /** Kept with the task: container events name it after the service is gone. */
  serviceName: string;
  /** Replicated: 1…N. Global: 0 (the node identifies the task's place). */
  slot: number;
  nodeId: string;
  spec: Json;
  specVersion: number;
  desiredState: 'running' | 'shutdown' | 'remove';
  state: TaskState;
  stateAt: number;
  message: string;
  err?: string;
  containerId?: string;
  exitCode?: number;
  hostPorts: PublishedPort[];
}

/** The length of every Swarm object id. */
export const OBJECT_ID_LENGTH = 25;

/** A Swarm object id: 25 lower-case base-36 characters, like swarmkit's identity.NewID. */
export function newObjectId(random: () => number = Math.random): string {
  let id = '';
  while (id.length < OBJECT_ID_LENGTH) id += Math.floor(random() * 36).toString(36);
  return id;
}

/** A container id: 64 hex characters. */
export function newContainerId(random: () => number = Math.random): string {
  let id = '';
  while (id.length < 64) id += Math.floor(random() * 16).toString(16);
  return id;
}
