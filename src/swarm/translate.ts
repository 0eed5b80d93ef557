import { createHash } from 'node:crypto';
import { ENDED_TASK_STATES, type NodeAvailability, type NodeState, type ObservedNode, type ObservedService, type ObservedTask, type PublishedPort, type ServiceUpdateState, type TaskState } from './model.js';

const UPDATE_STATES: ServiceUpdateState[] = ['updating', 'paused', 'completed', 'rollback_started', 'rollback_paused', 'rollback_completed'];

/* Docker API objects → the observed model. Docker's JSON is loosely typed, so every field is read defensively. */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * A short fingerprint of a container spec as Docker returns it. A task's Spec is a copy of its
 * service's TaskTemplate when Swarm made the task, and Docker marshals both from the same type, so
 * equal specs give byte-equal JSON: no canonical form is needed.
 */
export function containerTemplate(containerSpec: unknown): string {
  return createHash('sha1').update(JSON.stringify(containerSpec ?? {})).digest('hex').slice(0, 12);
}

export function toObservedNode(n: Json): ObservedNode {
  const spec = n.Spec ?? {};
  let addr: string = n.Status?.Addr ?? '';
  // A manager may report 0.0.0.0 as its Status.Addr; its manager address carries the real one.
  if ((!addr || addr === '0.0.0.0') && typeof n.ManagerStatus?.Addr === 'string') {
    addr = n.ManagerStatus.Addr.replace(/:\d+$/, '');
  }
  return {
    id: n.ID,
    hostname: n.Description?.Hostname ?? '',
    addr,
    role: spec.Role === 'manager' ? 'manager' : 'worker',
    state: (['ready', 'down', 'disconnected'].includes(n.Status?.State) ? n.Status.State : 'unknown') as NodeState,
    availability: (['active', 'pause', 'drain'].includes(spec.Availability) ? spec.Availability : 'active') as NodeAvailability,
    labels: { ...(spec.Labels ?? {}) },
    version: n.Version?.Index ?? 0,
  };
}

export function toObservedService(s: Json): ObservedService {
  const spec = s.Spec ?? {};
  return {
    id: s.ID,
    name: spec.Name ?? '',
    version: s.Version?.Index ?? 0,
    labels: { ...(spec.Labels ?? {}) },
    replicas: spec.Mode?.Replicated?.Replicas ?? 0,
    image: spec.TaskTemplate?.ContainerSpec?.Image ?? '',
    template: containerTemplate(spec.TaskTemplate?.ContainerSpec),
    createdAt: s.CreatedAt ?? '',
    updatedAt: s.UpdatedAt ?? '',
    ...(UPDATE_STATES.includes(s.UpdateStatus?.State)
      ? { updateStatus: { state: s.UpdateStatus.State, message: s.UpdateStatus.Message ?? '', startedAt: s.UpdateStatus.StartedAt ?? '' } }
      : {}),
  };
}

export function toObservedTask(t: Json): ObservedTask {
  const ports: PublishedPort[] = (t.Status?.PortStatus?.Ports ?? []).map((p: Json) => ({
    target: p.TargetPort,
    published: p.PublishedPort,
    protocol: p.Protocol === 'udp' ? 'udp' : 'tcp',
  }));
  return {
    id: t.ID,
    serviceId: t.ServiceID,
    nodeId: t.NodeID ?? '',
    slot: t.Slot ?? 0,
    desiredState: t.DesiredState as TaskState,
    state: t.Status?.State as TaskState,
    template: containerTemplate(t.Spec?.ContainerSpec),
    ports,
    message: t.Status?.Message ?? '',
    ...(t.Status?.Err ? { error: t.Status.Err } : {}),
    // Docker reports ExitCode 0 for a container still running: it means something once the task ended.
    ...(typeof t.Status?.ContainerStatus?.ExitCode === 'number' && ENDED_TASK_STATES.has(t.Status?.State) ? { exitCode: t.Status.ContainerStatus.ExitCode } : {}),
  };
}
