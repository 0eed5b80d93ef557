import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import { parseDuration, type ServiceSpec } from '../api/index.js';
import {
  LABEL_COLOR,
  LABEL_ENV,
  LABEL_SERVICE,
  LABEL_SPEC_HASH,
  LABEL_STACK_NAMESPACE,
  envConstraint,
  swarmServiceName,
  type ServiceColor,
} from './labels.js';
import { canonicalJson } from '../util/canonical-json.js';

export type DockerServiceSpec = Dockerode.ServiceSpec;

const NS_PER_MS = 1_000_000;

/**
 * Builds the complete Docker service spec for one berth service. Pure: the same input gives the
 * same spec (and spec-hash) byte for byte, so comparing hashes is how the planner tells whether
 * the Swarm service is what the Environment asks for.
 */
export function buildServiceSpec(env: string, service: string, spec: ServiceSpec, color?: ServiceColor): DockerServiceSpec {
  const body = buildUnlabelled(env, service, spec, color);
  const labels: Record<string, string> = {
    [LABEL_STACK_NAMESPACE]: env,
    [LABEL_ENV]: env,
    [LABEL_SERVICE]: service,
    ...(color ? { [LABEL_COLOR]: color } : {}),
    [LABEL_SPEC_HASH]: specHash(body),
  };
  return { ...body, Labels: labels };
}

function buildUnlabelled(env: string, service: string, spec: ServiceSpec, color?: ServiceColor): DockerServiceSpec {
  const containerSpec: Dockerode.ContainerSpec = {
    Image: spec.image,
    // Compose semantics: `command` replaces the image's CMD (Docker's Args), not its entrypoint.
    ...(spec.command ? { Args: [...spec.command] } : {}),
    ...(spec.environment
      ? { Env: Object.keys(spec.environment).sort().map((k) => `${k}=${String(spec.environment![k])}`) }
      : {}),
    Labels: { [LABEL_ENV]: env, [LABEL_SERVICE]: service },
    ...(spec.healthcheck
      ? {
          HealthCheck: {
            Test: [...spec.healthcheck.test],
            Interval: parseDuration(spec.healthcheck.interval) * NS_PER_MS,
            Timeout: parseDuration(spec.healthcheck.timeout) * NS_PER_MS,
            Retries: spec.healthcheck.retries,
            ...(spec.healthcheck.startPeriod ? { StartPeriod: parseDuration(spec.healthcheck.startPeriod) * NS_PER_MS } : {}),
          },
        }
      : {}),
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

/** sha256 over canonical JSON (sorted keys) of everything that determines the Swarm spec. */
export function specHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}
