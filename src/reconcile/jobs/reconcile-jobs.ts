import type { Logger } from 'pino';
import { JOB_RESULTS, type Environment, type JobSpec, type JobStatus } from '../../api/index.js';
import type { BerthMetrics } from '../../metrics/registry.js';
import type { SwarmApi } from '../../swarm/api.js';
import { buildJobRunSpec } from '../../swarm/job-spec.js';
import { LABEL_ENV, LABEL_JOB, LABEL_JOB_ATTEMPT, LABEL_JOB_RUN, isJobRun, jobRunServiceName } from '../../swarm/labels.js';
import type { SwarmSnapshot } from '../../swarm/model.js';
import type { JobRequestStore } from '../ports.js';
import { decideJob, type JobAction, type JobDecision } from './decide.js';
import type { ObservedRun } from './outcome.js';

export interface JobsDeps {
  swarm: SwarmApi;
  requests: JobRequestStore;
  log: Logger;
  metrics?: BerthMetrics | undefined;
  now: () => Date;
  /** While an attempt is going, look again this often. */
  pollMs: number;
}

export interface JobsPass {
  /** Each job's state, as persisted: goes into the environment's status. */
  jobs: Record<string, JobStatus>;
  requeueAfterMs?: number;
}

/**
 * One environment's jobs, after its services: decides each job (decide.ts), persists the new
 * states through `persist` (the fenced status write) BEFORE any Swarm change, then clears
 * `berth run` requests, removes and starts run services. A leader that dies anywhere in
 * between leaves a state from which the next leader does exactly the rest: a run recorded but
 * not created is created, a request recorded is not taken twice.
 */
export async function reconcileJobs(
  env: Environment,
  snapshot: SwarmSnapshot,
  previous: Record<string, JobStatus> | undefined,
  persist: (jobs: Record<string, JobStatus>) => Promise<void>,
  d: JobsDeps,
): Promise<JobsPass> {
  const name = env.metadata.name;
  const runServices = snapshot.services.filter((s) => s.labels[LABEL_ENV] === name && isJobRun(s));
  const specs = env.spec.jobs;
  if (Object.keys(specs).length === 0 && runServices.length === 0 && !previous) return { jobs: {} };

  const requests = Object.keys(specs).length > 0 ? await d.requests.readJobRequests(name) : {};
  const now = d.now();
  const decisions = new Map<string, JobDecision>();
  for (const [job, spec] of Object.entries(specs).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const runs: ObservedRun[] = runServices
      .filter((s) => s.labels[LABEL_JOB] === job)
      .map((s) => ({
        serviceId: s.id,
        run: Number(s.labels[LABEL_JOB_RUN]),
        attempt: Number(s.labels[LABEL_JOB_ATTEMPT]),
        tasks: snapshot.tasks.filter((t) => t.serviceId === s.id),
      }))
      .filter((r) => Number.isInteger(r.run) && r.run > 0 && Number.isInteger(r.attempt));
    decisions.set(job, decideJob({ spec, status: previous?.[job], runs, request: requests[job], now, pollMs: d.pollMs }));
  }

  const jobs = Object.fromEntries([...decisions].map(([job, dec]) => [job, dec.status]));
  if (JSON.stringify(jobs) !== JSON.stringify(previous ?? {})) await persist(jobs);

  // A job gone from the spec: its runs go with it, going or not, and so do its series.
  for (const job of Object.keys(previous ?? {})) if (!specs[job] && d.metrics) forgetJobMetrics(d.metrics, name, job);
  const gone = runServices.filter((s) => !specs[s.labels[LABEL_JOB]!]);
  for (const s of gone) {
    d.log.info({ job: s.labels[LABEL_JOB], service: s.name }, 'job removed from the spec: removing its run');
    await d.swarm.removeService(s.id);
  }
  let requeue: number | undefined;
  for (const [job, dec] of decisions) {
    const log = d.log.child({ job });
    observe(name, job, dec, d.metrics);
    for (const e of dec.ended) log.info({ run: e.run, attempt: e.attempt, result: e.result, exitCode: e.exitCode, durationSeconds: e.durationSeconds }, `run ${e.run} attempt ${e.attempt} ${e.result}: ${e.message}`);
    for (const s of dec.skipped) log.info({ tick: s.at }, `tick skipped: ${s.reason}`);
    for (const a of dec.actions) await apply(name, job, specs[job]!, a, d, log);
    if (dec.requeueAfterMs !== undefined) requeue = Math.min(requeue ?? Infinity, dec.requeueAfterMs);
  }
  return { jobs, ...(requeue !== undefined ? { requeueAfterMs: requeue } : {}) };
}

async function apply(env: string, job: string, spec: JobSpec, a: JobAction, d: JobsDeps, log: Logger): Promise<void> {
  switch (a.kind) {
    case 'clearRequest':
      await d.requests.clearJobRequest(env, job);
      return;
    case 'removeRun':
      log.info({ run: a.run, reason: a.reason }, `removing ${jobRunServiceName(env, job, a.run)}: ${a.reason}`);
      await d.swarm.removeService(a.serviceId);
      return;
    case 'startAttempt':
      log.info({ run: a.run, attempt: a.attempt }, `starting ${jobRunServiceName(env, job, a.run)} attempt ${a.attempt}`);
      await d.swarm.createService(buildJobRunSpec(env, job, spec, a.run, a.attempt));
      return;
  }
}

function observe(env: string, job: string, dec: JobDecision, m: BerthMetrics | undefined): void {
  if (!m) return;
  for (const e of dec.ended) {
    m.jobRunsTotal.inc({ env, job, result: e.result });
    m.jobDuration.observe({ env, job }, e.durationSeconds);
  }
  if (dec.status.lastSuccessAt) m.jobLastSuccess.set({ env, job }, Date.parse(dec.status.lastSuccessAt) / 1000);
  m.jobInterval.set({ env, job }, dec.intervalSeconds);
}

/** Drops a job's series: the job or its environment is gone. */
export function forgetJobMetrics(m: BerthMetrics, env: string, job: string): void {
  for (const result of JOB_RESULTS) m.jobRunsTotal.remove({ env, job, result });
  m.jobLastSuccess.remove({ env, job });
  m.jobInterval.remove({ env, job });
  m.jobDuration.remove({ env, job });
}
