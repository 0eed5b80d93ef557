import { compileSchedule, parseDuration, type JobRun, type JobRunRequest, type JobSpec, type JobStatus } from '../../api/index.js';
import { attemptOutcome, type ObservedRun } from './outcome.js';

/** Retry delays double from `backoff` up to this. */
export const MAX_BACKOFF_MS = 5 * 60_000;
/** Finished runs kept in the status (their Swarm services are trimmed to `history` separately). */
export const FINISHED_KEPT = 10;

export interface JobInput {
  spec: JobSpec;
  /** The job's state as the last leader persisted it; undefined for a job never seen. */
  status: JobStatus | undefined;
  /** This job's run services in the Swarm, with their tasks. */
  runs: ObservedRun[];
  /** A pending `berth run` request. */
  request: JobRunRequest | undefined;
  now: Date;
  /** While an attempt is going, look again this often: its task's end raises no event on the manager. */
  pollMs: number;
}

export type JobAction =
  | { kind: 'startAttempt'; run: number; attempt: number }
  | { kind: 'removeRun'; run: number; serviceId: string; reason: string }
  | { kind: 'clearRequest' };

/** An attempt that ended in this pass (for metrics and logs). */
export interface AttemptEnd {
  run: number;
  attempt: number;
  result: JobRun['result'] & string;
  exitCode?: number;
  durationSeconds: number;
  message: string;
}

export interface JobDecision {
  /** Persisted (fenced) before any action runs: the actions are replayed from it after a failover. */
  status: JobStatus;
  /** In order: the request cleared, removals, then starts. */
  actions: JobAction[];
  ended: AttemptEnd[];
  skipped: { at: string; reason: string }[];
  /** When to look again; undefined: nothing scheduled (cannot happen while a schedule exists). */
  requeueAfterMs: number | undefined;
  /** The job's interval now: from its next tick to the one after (for cron, the gap varies). */
  intervalSeconds: number;
}

/** The schedule as status shows it: the expression, and its timezone unless UTC. */
export function scheduleText(spec: Pick<JobSpec, 'schedule' | 'timezone'>): string {
  return spec.timezone === 'UTC' ? spec.schedule : `${spec.schedule} (${spec.timezone})`;
}

/** The delay before attempt `failed + 1`, after `failed` failed attempts: backoff, doubling, capped. */
export function retryDelayMs(backoff: string, failed: number): number {
  return Math.min(MAX_BACKOFF_MS, parseDuration(backoff) * 2 ** Math.max(0, failed - 1));
}

/**
 * One job's next steps: (spec, persisted state, what Swarm shows, now) → new state and actions.
 * Pure and deterministic, so every scheduling rule is tested in zero real time:
 * - an attempt whose task ended is recorded; a failure is retried after its backoff while
 *   `retries` allow, else the run is finished failed;
 * - a run going for longer than `timeout` is stopped (its service removed) and finished failed;
 * - a due tick starts a run, unless concurrency forbids it (skipped) or replaces the going one;
 *   a tick more than one interval late (no leader meanwhile) is skipped; either way the next
 *   tick is the first after now: missed ticks never pile up;
 * - a `berth run` request starts a run at once, whatever the concurrency, once per request;
 * - the services of finished runs beyond `history` are removed, oldest first.
 * An active run without its service is (re)started: the state is written before any service is
 * created, so a leader that died between the two leaves exactly that.
 */
export function decideJob(input: JobInput): JobDecision {
  const { spec, now } = input;
  const nowIso = now.toISOString();
  const schedule = compileSchedule(spec.schedule, spec.timezone);
  const text = scheduleText(spec);
  const prev = input.status;
  const st: JobStatus = prev
    ? { ...prev, schedule: text, active: prev.active.map((r) => ({ ...r })), finished: [...prev.finished] }
    : { schedule: text, lastRun: 0, active: [], finished: [] };
  if (!st.nextRunAt || prev?.schedule !== text) st.nextRunAt = schedule.first(now).toISOString();

  const removals: JobAction[] = [];
  const starts: JobAction[] = [];
  const ended: AttemptEnd[] = [];
  const skipped: { at: string; reason: string }[] = [];
  const byRun = new Map(input.runs.map((r) => [r.run, r]));

  // Runs in Swarm the state does not know (a status lost or restored): adopted, never run twice.
  for (const r of input.runs) {
    if (r.run <= st.lastRun) continue;
    st.active.push({ run: r.run, attempt: r.attempt, startedAt: nowIso, attemptStartedAt: nowIso });
    st.lastRun = r.run;
  }
  st.active.sort((a, b) => a.run - b.run);

  const finish = (run: JobRun, result: 'succeeded' | 'failed', message: string, exitCode?: number) => {
    st.active = st.active.filter((r) => r.run !== run.run);
    const { retryAt: _r, ...rest } = run;
    st.finished = [{ ...rest, finishedAt: nowIso, result, message, ...(exitCode !== undefined ? { exitCode } : {}) }, ...st.finished].slice(0, FINISHED_KEPT);
    if (result === 'succeeded') st.lastSuccessAt = nowIso;
  };
  const endAttempt = (run: JobRun, result: 'succeeded' | 'failed', message: string, exitCode?: number) =>
    ended.push({ run: run.run, attempt: run.attempt, result, message, durationSeconds: (now.getTime() - Date.parse(run.attemptStartedAt)) / 1000, ...(exitCode !== undefined ? { exitCode } : {}) });
  const remove = (run: number, reason: string) => {
    const svc = byRun.get(run);
    if (svc) removals.push({ kind: 'removeRun', run, serviceId: svc.serviceId, reason });
    byRun.delete(run);
  };
  const start = (run: JobRun) => starts.push({ kind: 'startAttempt', run: run.run, attempt: run.attempt });

  const timeoutMs = spec.timeout ? parseDuration(spec.timeout) : undefined;
  for (const run of [...st.active]) {
    const svc = byRun.get(run.run);
    const current = svc && svc.attempt === run.attempt && !run.retryAt ? svc : undefined;
    const outcome = current ? attemptOutcome(current.tasks) : undefined;
    if (outcome) {
      endAttempt(run, outcome.result, outcome.message, outcome.exitCode);
      if (outcome.result === 'succeeded') {
        finish(run, 'succeeded', outcome.message, outcome.exitCode);
        continue;
      }
      if (run.attempt > spec.retries) {
        finish(run, 'failed', `${outcome.message} (attempt ${run.attempt} of ${spec.retries + 1})`, outcome.exitCode);
        continue;
      }
      run.retryAt = new Date(now.getTime() + retryDelayMs(spec.backoff, run.attempt)).toISOString();
      if (outcome.exitCode !== undefined) run.exitCode = outcome.exitCode;
      run.message = `attempt ${run.attempt} ${outcome.message}; retrying`;
    }
    if (timeoutMs !== undefined && now.getTime() - Date.parse(run.startedAt) >= timeoutMs) {
      if (!run.retryAt) endAttempt(run, 'failed', `timed out after ${spec.timeout}`);
      finish(run, 'failed', `timed out after ${spec.timeout}: stopped`);
      remove(run.run, 'timeout');
      continue;
    }
    if (run.retryAt) {
      if (now.getTime() < Date.parse(run.retryAt)) continue;
      delete run.retryAt;
      run.attempt += 1;
      run.attemptStartedAt = nowIso;
      remove(run.run, `retry: attempt ${run.attempt}`);
      start(run);
      continue;
    }
    if (!svc) start(run);
    else if (svc.attempt !== run.attempt) {
      remove(run.run, `replaced by attempt ${run.attempt}`);
      start(run);
    }
  }

  const begin = (extra: Pick<JobRun, 'scheduledAt' | 'manual'>) => {
    const run: JobRun = { run: st.lastRun + 1, attempt: 1, startedAt: nowIso, attemptStartedAt: nowIso, ...extra };
    st.lastRun = run.run;
    st.active.push(run);
    start(run);
    return run;
  };

  const due = new Date(st.nextRunAt);
  if (now.getTime() >= due.getTime()) {
    st.nextRunAt = schedule.nextAfter(due, now).toISOString();
    const late = now.getTime() - due.getTime();
    const going = st.active;
    if (late > schedule.interval(due)) {
      skipped.push({ at: due.toISOString(), reason: `missed by ${Math.round(late / 1000)}s, more than one interval (no leader then): not run` });
    } else if (spec.concurrency === 'forbid' && going.length > 0) {
      skipped.push({ at: due.toISOString(), reason: `run ${going.map((r) => r.run).join(', ')} still going (concurrency: forbid)` });
    } else {
      if (spec.concurrency === 'replace') {
        for (const old of [...st.active]) {
          if (!old.retryAt) endAttempt(old, 'failed', `replaced by run ${st.lastRun + 1}`);
          finish(old, 'failed', `replaced by run ${st.lastRun + 1} (concurrency: replace)`);
          remove(old.run, 'replaced');
        }
      }
      begin({ scheduledAt: due.toISOString() });
    }
  }
  if (skipped.length > 0) st.lastSkipped = skipped[skipped.length - 1]!;

  const clear: JobAction[] = [];
  if (input.request) {
    clear.push({ kind: 'clearRequest' });
    if (input.request.requestedAt !== st.handledRequest) {
      st.handledRequest = input.request.requestedAt;
      begin({ manual: true });
    }
  }

  // Finished runs' services beyond `history`, oldest first; active runs are never trimmed.
  const activeRuns = new Set(st.active.map((r) => r.run));
  const finishedServices = [...byRun.values()].filter((r) => !activeRuns.has(r.run)).sort((a, b) => b.run - a.run);
  for (const r of finishedServices.slice(spec.history)) remove(r.run, 'history');

  const intervalSeconds = schedule.interval(new Date(st.nextRunAt)) / 1000;
  return { status: st, actions: [...clear, ...removals, ...starts], ended, skipped, requeueAfterMs: nextLook(st, timeoutMs, input), intervalSeconds };
}

/** The soonest of: the next tick, a retry's time, a timeout, and a poll while an attempt is going. */
function nextLook(st: JobStatus, timeoutMs: number | undefined, input: JobInput): number | undefined {
  const now = input.now.getTime();
  const at: number[] = [Date.parse(st.nextRunAt!)];
  for (const r of st.active) {
    if (r.retryAt) at.push(Date.parse(r.retryAt));
    else at.push(now + input.pollMs);
    if (timeoutMs !== undefined) at.push(Date.parse(r.startedAt) + timeoutMs);
  }
  return Math.max(0, Math.min(...at) - now);
}
