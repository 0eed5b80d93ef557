import { test } from 'node:test';
import assert from 'node:assert/strict';
import { environmentSchema, jobSpecSchema, type JobSpec, type JobStatus } from '../../src/api/index.js';
import { decideJob, MAX_BACKOFF_MS, retryDelayMs, type JobDecision, type JobInput } from '../../src/reconcile/jobs/decide.js';
import type { ObservedRun } from '../../src/reconcile/jobs/outcome.js';
import type { ObservedTask, TaskState } from '../../src/swarm/model.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000);
const iso = (s: number) => at(s).toISOString();

function job(over: Partial<Record<keyof JobSpec, unknown>> = {}): JobSpec {
  return jobSpecSchema.parse({ image: 'reg:5000/web:v1', schedule: '@every 10s', ...over });
}

function task(state: TaskState, exitCode?: number): ObservedTask {
  return { id: `t-${state}`, serviceId: 's', nodeId: 'n1', slot: 1, desiredState: 'complete', state, template: 'web-v1', ports: [], message: state, ...(exitCode !== undefined ? { exitCode } : {}) };
}

function run(n: number, attempt: number, state?: TaskState, exitCode?: number): ObservedRun {
  return { serviceId: `svc-${n}-${attempt}`, run: n, attempt, tasks: state ? [{ ...task(state, exitCode), serviceId: `svc-${n}-${attempt}` }] : [] };
}

function decide(spec: JobSpec, status: JobStatus | undefined, nowS: number, runs: ObservedRun[] = [], request?: string): JobDecision {
  const input: JobInput = { spec, status, runs, request: request ? { requestedAt: request } : undefined, now: at(nowS), pollMs: 1_000 };
  return decideJob(input);
}

/** Status with the job's next tick at `nextS` and nothing going. */
function idle(spec: JobSpec, nextS: number, over: Partial<JobStatus> = {}): JobStatus {
  return { schedule: spec.schedule, nextRunAt: iso(nextS), lastRun: 0, active: [], finished: [], ...over };
}

const kinds = (d: JobDecision) => d.actions.map((a) => (a.kind === 'startAttempt' ? `start ${a.run}/${a.attempt}` : a.kind === 'removeRun' ? `remove ${a.run} (${a.reason})` : 'clear'));

test('a job seen for the first time waits for its first tick: nothing starts, the reconcile comes back then', () => {
  const d = decide(job(), undefined, 0);
  assert.equal(d.status.nextRunAt, iso(10));
  assert.deepEqual(d.actions, []);
  assert.equal(d.requeueAfterMs, 10_000);
});

test('a due tick starts the next run and schedules the following tick on the series', () => {
  const spec = job();
  const d = decide(spec, idle(spec, 10, { lastRun: 4 }), 10.2);
  assert.deepEqual(kinds(d), ['start 5/1']);
  assert.equal(d.status.lastRun, 5);
  assert.equal(d.status.active[0]?.scheduledAt, iso(10));
  assert.equal(d.status.nextRunAt, iso(20));
  assert.equal(d.requeueAfterMs, 1_000, 'polls while the run is going');
});

test('a run whose task is still going is left alone; its completion is recorded as a success', () => {
  const spec = job();
  const going = decide(spec, idle(spec, 10), 10).status;
  const still = decide(spec, going, 12, [run(1, 1, 'running')]);
  assert.deepEqual(still.actions, []);
  assert.equal(still.status.active.length, 1);
  const done = decide(spec, going, 13, [run(1, 1, 'complete')]);
  assert.deepEqual(done.actions, []);
  assert.deepEqual(done.status.active, []);
  assert.equal(done.status.finished[0]?.result, 'succeeded');
  assert.equal(done.status.lastSuccessAt, iso(13));
  assert.deepEqual(done.ended.map((e) => [e.result, e.durationSeconds]), [['succeeded', 3]]);
});

test('a failed attempt is retried after its backoff, doubling, and the run succeeds on a later attempt', () => {
  const spec = job({ schedule: '@every 1h', retries: 3, backoff: '2s' });
  let st = decide(spec, idle(spec, 10), 10).status;
  let d = decide(spec, st, 12, [run(1, 1, 'failed', 1)]);
  assert.deepEqual(d.actions, [], 'waits for the backoff, keeping the failed service for its logs');
  assert.equal(d.status.active[0]?.retryAt, iso(14));
  assert.equal(d.status.active[0]?.exitCode, 1);
  assert.deepEqual(d.ended.map((e) => e.result), ['failed']);
  assert.equal(d.requeueAfterMs, 2_000);
  st = d.status;
  assert.deepEqual(decide(spec, st, 13, [run(1, 1, 'failed', 1)]).actions, [], 'not before retryAt');
  d = decide(spec, st, 14, [run(1, 1, 'failed', 1)]);
  assert.deepEqual(kinds(d), ['remove 1 (retry: attempt 2)', 'start 1/2']);
  st = d.status;
  d = decide(spec, st, 16, [run(1, 2, 'failed', 1)]);
  assert.equal(d.status.active[0]?.retryAt, iso(20), 'the second delay is twice the first');
  st = d.status;
  st = decide(spec, st, 20, [run(1, 2, 'failed', 1)]).status;
  d = decide(spec, st, 23, [run(1, 3, 'complete')]);
  assert.equal(d.status.finished[0]?.result, 'succeeded');
  assert.equal(d.status.finished[0]?.attempt, 3);
  assert.deepEqual(d.status.active, []);
});

test('retry delays double from backoff and stop growing at 5 minutes', () => {
  assert.deepEqual([1, 2, 3, 4].map((n) => retryDelayMs('10s', n)), [10_000, 20_000, 40_000, 80_000]);
  assert.equal(retryDelayMs('10s', 20), MAX_BACKOFF_MS);
});

test('a run that fails more often than retries allow is finished failed with its exit code', () => {
  const spec = job({ schedule: '@every 1h', retries: 0 });
  const st = decide(spec, idle(spec, 10), 10).status;
  const d = decide(spec, st, 11, [run(1, 1, 'failed', 3)]);
  assert.deepEqual(d.status.active, []);
  assert.equal(d.status.finished[0]?.result, 'failed');
  assert.equal(d.status.finished[0]?.exitCode, 3);
  assert.equal(d.status.lastSuccessAt, undefined);
});

test('concurrency: forbid skips a tick while a run is going, allow starts another, replace stops the going one', () => {
  const going = (spec: JobSpec) => decide(spec, idle(spec, 10), 10).status;
  const forbid = job({ concurrency: 'forbid' });
  const f = decide(forbid, going(forbid), 20, [run(1, 1, 'running')]);
  assert.deepEqual(f.actions, []);
  assert.match(f.status.lastSkipped?.reason ?? '', /forbid/);
  assert.equal(f.status.nextRunAt, iso(30), 'the skipped tick is not run later');

  const allow = job({ concurrency: 'allow' });
  assert.deepEqual(kinds(decide(allow, going(allow), 20, [run(1, 1, 'running')])), ['start 2/1']);

  const replace = job({ concurrency: 'replace' });
  const r = decide(replace, going(replace), 20, [run(1, 1, 'running')]);
  assert.deepEqual(kinds(r), ['remove 1 (replaced)', 'start 2/1']);
  assert.equal(r.status.finished[0]?.result, 'failed');
  assert.deepEqual(r.ended.map((e) => e.result), ['failed']);
});

test('a run going longer than timeout is stopped and counted failed, without a retry', () => {
  const spec = job({ schedule: '@every 1h', timeout: '5s', retries: 2 });
  const st = decide(spec, idle(spec, 10), 10).status;
  const before = decide(spec, st, 14, [run(1, 1, 'running')]);
  assert.deepEqual(before.actions, []);
  assert.equal(before.requeueAfterMs, 1_000);
  const d = decide(spec, st, 15, [run(1, 1, 'running')]);
  assert.deepEqual(kinds(d), ['remove 1 (timeout)']);
  assert.equal(d.status.finished[0]?.result, 'failed');
  assert.match(d.status.finished[0]?.message ?? '', /timed out/);
  assert.deepEqual(d.ended.map((e) => e.result), ['failed']);
});

test('a tick missed while there was no leader runs once on takeover when within one interval, else is skipped', () => {
  const spec = job();
  const late = decide(spec, idle(spec, 10), 19);
  assert.deepEqual(kinds(late), ['start 1/1']);
  assert.equal(late.status.nextRunAt, iso(20));
  const later = decide(spec, idle(spec, 10), 45);
  assert.deepEqual(later.actions, []);
  assert.match(later.status.lastSkipped?.reason ?? '', /missed/);
  assert.equal(later.status.nextRunAt, iso(50), 'missed ticks do not pile up');
});

test('after a failover the persisted run is created if its service is missing, and never started twice if it exists', () => {
  const spec = job();
  const st = decide(spec, idle(spec, 10), 10).status; // persisted; the leader died before creating
  assert.deepEqual(kinds(decide(spec, st, 12)), ['start 1/1']);
  assert.deepEqual(decide(spec, st, 12, [run(1, 1)]).actions, [], 'created, no task yet: going');
  assert.deepEqual(decide(spec, st, 12, [run(1, 1, 'running')]).actions, []);
  const retrying = { ...st, active: [{ ...st.active[0]!, attempt: 2 }] }; // died between the state and the replacement
  assert.deepEqual(kinds(decide(spec, retrying, 12, [run(1, 1, 'failed', 1)])), ['remove 1 (replaced by attempt 2)', 'start 1/2']);
});

test('a run service the state does not know (status lost) is adopted, not started again', () => {
  const spec = job();
  const d = decide(spec, undefined, 0, [run(7, 1, 'running')]);
  assert.deepEqual(d.actions, []);
  assert.equal(d.status.lastRun, 7);
  assert.deepEqual(d.status.active.map((r) => r.run), [7]);
});

test('berth run starts one run per request, whatever the schedule and concurrency', () => {
  const spec = job({ schedule: '@every 1h' });
  const d = decide(spec, idle(spec, 3600), 5, [], 'req-1');
  assert.deepEqual(kinds(d), ['clear', 'start 1/1']);
  assert.equal(d.status.active[0]?.manual, true);
  const again = decide(spec, d.status, 6, [run(1, 1, 'running')], 'req-1');
  assert.deepEqual(kinds(again), ['clear'], 'a request already taken (the leader died before clearing it) starts nothing');
  assert.deepEqual(kinds(decide(spec, d.status, 6, [run(1, 1, 'running')], 'req-2')), ['clear', 'start 2/1']);
});

test('finished runs beyond history lose their services, oldest first; going runs are never trimmed', () => {
  const spec = job({ history: 2, concurrency: 'allow' });
  const st = idle(spec, 100, { lastRun: 5, active: [{ run: 5, attempt: 1, startedAt: iso(40), attemptStartedAt: iso(40) }] });
  const d = decide(spec, st, 50, [run(1, 1, 'complete'), run(2, 1, 'complete'), run(3, 1, 'failed'), run(4, 1, 'complete'), run(5, 1, 'running')]);
  assert.deepEqual(kinds(d), ['remove 2 (history)', 'remove 1 (history)']);
});

test('a five-field cron is read in its timezone', () => {
  const spec = job({ schedule: '0 2 * * *', timezone: 'Europe/Berlin' });
  const d = decide(spec, undefined, 0);
  assert.equal(d.status.nextRunAt, '2026-01-01T01:00:00.000Z');
  assert.equal(d.status.schedule, '0 2 * * * (Europe/Berlin)');
});

test("the job's interval is the gap from its next tick to the one after: weekday cron from Friday is 3 days", () => {
  assert.equal(decide(job(), undefined, 0).intervalSeconds, 10);
  // 2026-01-01 is a Thursday: at 03:00 the next tick is Friday 02:00, the one after Monday 02:00.
  const weekdays = job({ schedule: '0 2 * * 1-5' });
  assert.equal(decide(weekdays, undefined, 3 * 3600).status.nextRunAt, '2026-01-02T02:00:00.000Z');
  assert.equal(decide(weekdays, undefined, 3 * 3600).intervalSeconds, 3 * 86_400);
  assert.equal(decide(weekdays, undefined, 1 * 3600).intervalSeconds, 86_400, 'Thursday 02:00 to Friday 02:00');
});

test('the schema takes five-field cron, nicknames and @every, and rejects the rest with the field', () => {
  for (const schedule of ['*/5 * * * *', '@daily', '@every 30s', '@every 1h30m']) assert.ok(jobSpecSchema.safeParse({ image: 'a:1', schedule }).success, schedule);
  for (const schedule of ['* * * * * *', '61 * * * *', '@every 0s', '@every soon', 'daily']) {
    const r = jobSpecSchema.safeParse({ image: 'a:1', schedule });
    assert.ok(!r.success, schedule);
    assert.deepEqual(r.error.issues[0]?.path, ['schedule'], schedule);
  }
  const tz = jobSpecSchema.safeParse({ image: 'a:1', schedule: '0 2 * * *', timezone: 'Mars/Olympus' });
  assert.deepEqual(!tz.success && tz.error.issues[0]?.path, ['timezone']);
});

test('an environment may hold only jobs; a job may not share a service name', () => {
  const base = { apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name: 'batch' } };
  assert.ok(environmentSchema.safeParse({ ...base, spec: { group: 'g', nodes: 1, services: {}, jobs: { report: { image: 'a:1', schedule: '@daily' } } } }).success);
  const clash = environmentSchema.safeParse({
    ...base,
    spec: { group: 'g', nodes: 1, services: { report: { image: 'a:1' } }, jobs: { report: { image: 'a:1', schedule: '@daily' } } },
  });
  assert.ok(!clash.success);
  assert.deepEqual(clash.error.issues[0]?.path, ['spec', 'jobs', 'report']);
});
