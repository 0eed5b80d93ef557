import { ConstraintError, parseConstraints } from './constraints.js';
import { invalidArgument } from './errors.js';
import type { Json } from './model.js';
import type { Placement } from './scheduler.js';

/*
 * What the simulator takes from a ServiceSpec: validation swarmkit would do before storing it
 * (name, image, mode, constraints), the defaults Docker fills in on the way back, and the
 * placement the scheduler needs.
 */

const SERVICE_NAME = /^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/;

export type ServiceMode = 'replicated' | 'global';

export function modeOf(spec: Json): ServiceMode {
  return spec.Mode?.Global ? 'global' : 'replicated';
}

export function replicasOf(spec: Json): number {
  return spec.Mode?.Replicated?.Replicas ?? 0;
}

/** Validates and returns a copy with Docker's defaults, so inspect shows what Docker shows. */
export function normaliseServiceSpec(input: unknown): Json {
  if (!input || typeof input !== 'object') throw invalidArgument('service spec must be a JSON object');
  const spec = structuredClone(input) as Json;
  const name = spec.Name;
  if (typeof name !== 'string' || name.length > 63 || !SERVICE_NAME.test(name)) {
    throw invalidArgument('name must be valid as a DNS name component');
  }
  spec.Labels ??= {};
  const task = (spec.TaskTemplate ??= {});
  const container = task.ContainerSpec;
  if (!container || typeof container.Image !== 'string' || container.Image === '') {
    throw invalidArgument('ContainerSpec: image reference must be provided');
  }
  task.ForceUpdate ??= 0;
  task.Runtime ??= 'container';
  task.Placement ??= {};
  try {
    parseConstraints(task.Placement.Constraints);
  } catch (err) {
    throw invalidArgument((err as ConstraintError).message);
  }
  const mode = (spec.Mode ??= { Replicated: { Replicas: 1 } });
  if (mode.ReplicatedJob || mode.GlobalJob) throw invalidArgument('job services are not simulated');
  if (mode.Replicated) {
    mode.Replicated.Replicas ??= 1;
    if (!Number.isInteger(mode.Replicated.Replicas) || mode.Replicated.Replicas < 0) throw invalidArgument('replicas must be a non-negative integer');
  } else if (!mode.Global) {
    throw invalidArgument('service mode must be replicated or global');
  }
  const endpoint = (spec.EndpointSpec ??= {});
  endpoint.Mode ??= 'vip';
  for (const p of endpoint.Ports ?? []) {
    p.Protocol ??= 'tcp';
    p.PublishMode ??= 'ingress';
    if (!Number.isInteger(p.TargetPort) || p.TargetPort <= 0) throw invalidArgument('EndpointSpec: TargetPort must be set');
  }
  return spec;
}

/** The part of the spec whose change replaces tasks (a rolling update); replicas alone do not. */
export function taskIdentity(spec: Json): string {
  return JSON.stringify([spec.TaskTemplate, spec.EndpointSpec]);
}

export function placementOf(spec: Json): Placement {
  const p = spec.TaskTemplate?.Placement ?? {};
  const constraints = parseConstraints(p.Constraints);
  const spread = (p.Preferences ?? []).find((x: Json) => x?.Spread?.SpreadDescriptor)?.Spread.SpreadDescriptor as string | undefined;
  const hostPorts = (spec.EndpointSpec?.Ports ?? [])
    .filter((x: Json) => x.PublishMode === 'host' && x.PublishedPort > 0)
    .map((x: Json) => x.PublishedPort as number);
  return { constraints, maxReplicas: p.MaxReplicas ?? 0, ...(spread ? { spreadBy: spread } : {}), hostPorts };
}
