import type Dockerode from 'dockerode';
import type { JobSpec } from '../api/index.js';
import { LABEL_ENV, LABEL_JOB, LABEL_JOB_ATTEMPT, LABEL_JOB_RUN, LABEL_STACK_NAMESPACE, envConstraint, jobRunServiceName } from './labels.js';
import { dockerEnv, dockerHealthCheck, type DockerServiceSpec } from './service-spec.js';

/**
 * The Swarm service for one attempt of one run of a job: a `replicated-job` of one task that runs
 * to completion on the environment's nodes, never restarted by Swarm (berth decides retries and
 * reads the outcome from the task). The image's HEALTHCHECK is switched off unless the job sets
 * one: Swarm would otherwise kill a long batch run as unhealthy.
 */
export function buildJobRunSpec(env: string, job: string, spec: JobSpec, run: number, attempt: number): DockerServiceSpec {
  const environment = { ...(spec.environment ?? {}), BERTH_JOB_RUN: run, BERTH_JOB_ATTEMPT: attempt };
  const container: Dockerode.ContainerSpec = {
    Image: spec.image,
    ...(spec.command ? { Args: [...spec.command] } : {}),
    Env: dockerEnv(environment),
    Labels: { [LABEL_ENV]: env, [LABEL_JOB]: job },
    HealthCheck: spec.healthcheck ? dockerHealthCheck(spec.healthcheck) : { Test: ['NONE'] },
  };
  return {
    Name: jobRunServiceName(env, job, run),
    Labels: {
      [LABEL_STACK_NAMESPACE]: env,
      [LABEL_ENV]: env,
      [LABEL_JOB]: job,
      [LABEL_JOB_RUN]: String(run),
      [LABEL_JOB_ATTEMPT]: String(attempt),
    },
    TaskTemplate: {
      ContainerSpec: container,
      Placement: { Constraints: [envConstraint(env), ...(spec.placement.constraints ?? [])] },
      RestartPolicy: { Condition: 'none', MaxAttempts: 0 },
    },
    Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
  };
}
