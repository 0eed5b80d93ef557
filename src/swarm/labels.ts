import type { Color } from '../api/status.js';

/**
 * The names berth writes into Swarm (docs/keys.md). Ownership is by label: whatever carries
 * `berth.env=<env>` and this installation's `berth.installation=<id>` belongs to that environment.
 */
export const LABEL_ENV = 'berth.env';
/** The installation (etcd `<prefix>/installation`) that made the object: berth touches only its own. */
export const LABEL_INSTALLATION = 'berth.installation';
export const LABEL_SERVICE = 'berth.service';
export const LABEL_COLOR = 'berth.color';
export const LABEL_SPEC_HASH = 'berth.spec-hash';
export const LABEL_STACK_NAMESPACE = 'com.docker.stack.namespace';
/** A job's run: the job's name, the run's number and the attempt the service runs. */
export const LABEL_JOB = 'berth.job';
export const LABEL_JOB_RUN = 'berth.job-run';
export const LABEL_JOB_ATTEMPT = 'berth.job-attempt';

/** `<env>_<service>`, or `<env>_<service>_<color>` for blue-green. */
export function swarmServiceName(env: string, service: string, color?: Color): string {
  return color ? `${env}_${service}_${color}` : `${env}_${service}`;
}

/** `<env>_<job>_<run>`: one Swarm replicated-job service per run of a job. */
export function jobRunServiceName(env: string, job: string, run: number): string {
  return `${env}_${job}_${run}`;
}

/** Whether a berth service is a job's run (the jobs reconcile owns it, not the service planner). */
export function isJobRun(s: { labels: Record<string, string> }): boolean {
  return LABEL_JOB in s.labels;
}

/** The constraint every berth service carries: only nodes claimed by its environment. */
export function envConstraint(env: string): string {
  return `node.labels.${LABEL_ENV}==${env}`;
}
