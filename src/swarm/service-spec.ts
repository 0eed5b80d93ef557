import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import { configPath, parseDuration, secretPath, type Color, type Healthcheck, type ServiceSpec } from '../api/index.js';
import {
  LABEL_COLOR,
  LABEL_ENV,
  LABEL_SERVICE,
  LABEL_SPEC_HASH,
  LABEL_STACK_NAMESPACE,
  envConstraint,
  swarmServiceName,
} from './labels.js';
import type { ObservedService } from './model.js';
import { canonicalJson } from '../util/canonical-json.js';
import { deepFreeze } from '../util/deep-freeze.js';

export type DockerServiceSpec = Dockerode.ServiceSpec;

const NS_PER_MS = 1_000_000;

/**
 * Builds the complete Docker service spec for one berth service. Pure: the same input gives the
 * same spec (and spec-hash) byte for byte, so comparing hashes is how the planner tells whether
 * the Swarm service runs the version the Environment asks for. The hash leaves the replica count
 * out: resizing is not a release, it is an update of the same version in place.
 */
export function buildServiceSpec(env: string, service: string, spec: ServiceSpec, color?: Color): DockerServiceSpec {
  if (!Object.isFrozen(spec)) return buildLabelled(env, service, spec, color);
  const key = `${env}/${service}/${color ?? ''}`;
  let built = builtFrom.get(spec);
  const held = built?.get(key);
  if (held) return held;
  if (!built) builtFrom.set(spec, (built = new Map()));
  const out = deepFreeze(buildLabelled(env, service, spec, color));
  built.set(key, out);
  return out;
}

/**
 * The specs built from each frozen berth service spec (the resource informer hands out frozen
 * environments, the same objects until the environment changes): every reconcile asks for the
 * same one several times (to plan, to rebalance, for the status), and hashing it is most of the
 * cost. Held only while the berth spec object lives; neither can change.
 */
const builtFrom = new WeakMap<ServiceSpec, Map<string, DockerServiceSpec>>();

function buildLabelled(env: string, service: string, spec: ServiceSpec, color?: Color): DockerServiceSpec {
  const body = buildUnlabelled(env, service, spec, color);
  const { Mode: _replicas, ...version } = body;
  const labels: Record<string, string> = {
    [LABEL_STACK_NAMESPACE]: env,
    [LABEL_ENV]: env,
    [LABEL_SERVICE]: service,
    ...(color ? { [LABEL_COLOR]: color } : {}),
    [LABEL_SPEC_HASH]: specHash(version),
  };
  return { ...body, Labels: labels };
}

/**
 * Whether an observed service runs the version `desired` describes, whatever its replica count.
 * Before replicas left the hash, berth hashed the whole spec, replica count included; such a label
 * is recognised at the service's own count, so upgrading berth updates, restarts or re-colours
 * nothing. It is replaced by the new hash the next time berth updates the service.
 */
export function runsVersion(observed: Pick<ObservedService, 'labels' | 'replicas'>, desired: DockerServiceSpec): boolean {
  const label = observed.labels[LABEL_SPEC_HASH];
  if (label === desired.Labels?.[LABEL_SPEC_HASH]) return true;
  const { Labels: _labels, ...body } = desired;
  return label === specHash({ ...body, Mode: { Replicated: { Replicas: observed.replicas } } });
}

function buildUnlabelled(env: string, service: string, spec: ServiceSpec, color?: Color): DockerServiceSpec {
  const containerSpec: Dockerode.ContainerSpec = {
    Image: spec.image,
    // Compose semantics: `command` replaces the image's CMD (Docker's Args), not its entrypoint.
    ...(spec.command ? { Args: [...spec.command] } : {}),
    ...(spec.environment
      ? { Env: dockerEnv(spec.environment) }
      : {}),
    Labels: { [LABEL_ENV]: env, [LABEL_SERVICE]: service },
    ...(spec.healthcheck ? { HealthCheck: dockerHealthCheck(spec.healthcheck) } : {}),
    // By name only: the hash covers which objects are mounted where; the Docker adapter adds their ids.
    ...(spec.secrets?.length ? { Secrets: spec.secrets.map((r) => ({ SecretName: r.source, File: fileTarget(secretPath(r)) })) } : {}),
    ...(spec.configs?.length ? { Configs: spec.configs.map((r) => ({ ConfigName: r.source, File: fileTarget(configPath(r)) })) } : {}),
  };
  const placement: Dockerode.Placement = {
    Constraints: [envConstraint(env), ...(spec.placement.constraints ?? [])],
    ...(spec.placement.maxPerNode !== undefined ? { MaxReplicas: spec.placement.maxPerNode } : {}),
    ...(spec.placement.spreadBy ? { Preferences: [{ Spread: { SpreadDescriptor: spec.placement.spreadBy } }] } : {}),
  };
  // Rolling: one task at a time, new before old (no gap), roll back when the new task fails.
  const update: Dockerode.UpdateConfig = {
    Parallelism: 1,
    Delay: 0,
    FailureAction: 'rollback',
    Monitor: 5_000 * NS_PER_MS,
    MaxFailureRatio: 0,
    Order: 'start-first',
  };
  const rollback: Dockerode.UpdateConfig = {
    Parallelism: 1,
    Delay: 0,
    FailureAction: 'pause',
    Monitor: 5_000 * NS_PER_MS,
    MaxFailureRatio: 0,
    Order: 'start-first',
  };
  return {
    Name: swarmServiceName(env, service, color),
    TaskTemplate: {
      ContainerSpec: containerSpec,
      Placement: placement,
      RestartPolicy: { Condition: 'any', Delay: 2_000 * NS_PER_MS, MaxAttempts: 0 },
    },
    Mode: { Replicated: { Replicas: spec.replicas } },
    UpdateConfig: update,
    RollbackConfig: rollback,
    EndpointSpec: {
      Mode: 'vip',
      // Host mode: the lab's ingress mesh does not work, and nginx wants node:port endpoints anyway.
      Ports: spec.ports.map((p) => ({
        Protocol: p.protocol,
        TargetPort: p.target,
        ...(p.published !== undefined ? { PublishedPort: p.published } : {}),
        PublishMode: 'host' as const,
      })),
    },
  };
}

/** Read-only for everyone, owned by root: what the docker CLI sets when the spec says no more. */
function fileTarget(path: string): { Name: string; UID: string; GID: string; Mode: number } {
  return { Name: path, UID: '0', GID: '0', Mode: 0o444 };
}

/** A spec's healthcheck as Docker's HealthConfig (durations in nanoseconds). */
export function dockerHealthCheck(h: Healthcheck): NonNullable<Dockerode.ContainerSpec['HealthCheck']> {
  return {
    Test: [...h.test],
    Interval: parseDuration(h.interval) * NS_PER_MS,
    Timeout: parseDuration(h.timeout) * NS_PER_MS,
    Retries: h.retries,
    ...(h.startPeriod ? { StartPeriod: parseDuration(h.startPeriod) * NS_PER_MS } : {}),
  };
}

/** `KEY=VALUE` lines, sorted: the same environment always gives the same spec. */
export function dockerEnv(environment: Record<string, string | number | boolean>): string[] {
  return Object.keys(environment).sort().map((k) => `${k}=${String(environment[k])}`);
}

/** sha256 over canonical JSON (sorted keys) of everything that determines the Swarm spec. */
export function specHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}
