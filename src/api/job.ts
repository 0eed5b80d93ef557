import { z } from 'zod';
import { MAX_SWARM_SERVICE_NAME, commandSchema, healthcheckSchema } from './container.js';
import { constraint, duration, envKey, envValue, imageRef, trackPeriod } from './primitives.js';
import { compileSchedule } from './schedule.js';

export const JOB_CONCURRENCY = ['forbid', 'allow', 'replace'] as const;
export const jobConcurrencySchema = z.enum(JOB_CONCURRENCY);

/** The room kept in a run's Swarm service name `<env>_<job>_<run>` for the run number. */
const RUN_NUMBER_DIGITS = 9;

/** Whether `<env>_<job>_<run>` stays within Swarm's name limit for every run number berth will reach. */
export function jobSwarmNameFits(env: string, job: string): boolean {
  return env.length + 1 + job.length + 1 + RUN_NUMBER_DIGITS <= MAX_SWARM_SERVICE_NAME;
}

export const jobSpecSchema = z
  .strictObject({
    image: imageRef,
    /** Re-resolve the image's tag this often: later runs start the new digest (a going run keeps its own). */
    track: trackPeriod.optional(),
    command: commandSchema.optional(),
    environment: z.record(envKey, envValue).optional(),
    /** Five-field cron, a nickname (`@daily`), or `@every <duration>`. */
    schedule: z.string().max(256),
    /** IANA timezone the cron fields are read in. */
    timezone: z.string().max(64).default('UTC'),
    /** A tick while a run is going: forbid skips it, allow starts another, replace stops the going one. */
    concurrency: jobConcurrencySchema.default('forbid'),
    /** Further attempts after a failed one. */
    retries: z.number().int('must be a whole number').min(0).max(20).default(0),
    /** The delay before the first retry; it doubles for each further one, capped at 5 min. */
    backoff: duration({ max: '5m' }).default('10s'),
    /** A run (all its attempts) still going after this is stopped and counted failed. */
    timeout: duration({ max: '7d' }).optional(),
    /** Finished runs whose Swarm services are kept (for `docker service logs`). */
    history: z.number().int('must be a whole number').min(0).max(100).default(3),
    /** Off by default: a batch task is not a server, and Swarm would kill a long run as unhealthy. */
    healthcheck: healthcheckSchema.optional(),
    placement: z.strictObject({ constraints: z.array(constraint).max(32).optional() }).default({}),
  })
  .superRefine((job, ctx) => {
    try {
      compileSchedule(job.schedule, job.timezone);
    } catch (err) {
      const path = /timezone/.test((err as Error).message) ? ['timezone'] : ['schedule'];
      ctx.addIssue({ code: 'custom', path, message: (err as Error).message });
    }
  });
export type JobSpec = z.infer<typeof jobSpecSchema>;

export const JOB_RESULTS = ['succeeded', 'failed'] as const;
export const jobResultSchema = z.enum(JOB_RESULTS);
export type JobResult = z.infer<typeof jobResultSchema>;

/** One run of a job: going (no `result`) or finished. Times are ISO strings, by the controller's clock. */
export const jobRunSchema = z.strictObject({
  run: z.number().int().min(1),
  /** The attempt going, or the last one (1 for the first). */
  attempt: z.number().int().min(1),
  /** The tick it was started for; absent for a run started by `berth run`. */
  scheduledAt: z.string().optional(),
  manual: z.boolean().optional(),
  startedAt: z.string(),
  attemptStartedAt: z.string(),
  /** Waiting for the backoff: the next attempt starts then. */
  retryAt: z.string().optional(),
  finishedAt: z.string().optional(),
  result: jobResultSchema.optional(),
  exitCode: z.number().int().optional(),
  message: z.string().optional(),
});
export type JobRun = z.infer<typeof jobRunSchema>;

/**
 * A job's schedule state, kept in the environment's status (written by the leader, fenced): the
 * next tick, the runs going and the last finished ones. A new leader resumes from it, so a
 * failover neither loses nor doubles a run.
 */
export const jobStatusSchema = z.strictObject({
  schedule: z.string(),
  nextRunAt: z.string().optional(),
  /** The number of the last run started (0: none yet). */
  lastRun: z.number().int().min(0),
  active: z.array(jobRunSchema),
  /** Newest first. */
  finished: z.array(jobRunSchema),
  lastSuccessAt: z.string().optional(),
  /** The `requestedAt` of the last `berth run` request taken. */
  handledRequest: z.string().optional(),
  /** The last tick skipped, and why (concurrency forbid, or missed by more than one interval). */
  lastSkipped: z.strictObject({ at: z.string(), reason: z.string() }).optional(),
});
export type JobStatus = z.infer<typeof jobStatusSchema>;

/** What `berth run env NAME JOB` records (etcd `<prefix>/job-requests/<env>/<job>`). */
export const jobRunRequestSchema = z.strictObject({ requestedAt: z.string() });
export type JobRunRequest = z.infer<typeof jobRunRequestSchema>;
