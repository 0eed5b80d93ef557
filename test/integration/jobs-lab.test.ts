/**
 * Scheduled jobs on the real lab, four jobs side by side in one jobs-only environment (one
 * node), so the file takes about as long as its longest scenario:
 * - tick:  `@every 5s`, succeeds: a run every ~5 s, results in status and metrics, history trimmed;
 * - flaky: fails twice then succeeds by BERTH_JOB_ATTEMPT: retried with growing delays;
 * - slow:  `concurrency: forbid`, runs longer than its interval: never two at once;
 * - stuck: `timeout` shorter than the run: stopped and counted failed.
 * Names are prefixed `jobs-`. Run under `flock /tmp/berth-lab-tests.lock`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import {
  cleanSlate,
  group,
  jobsOnlyEnv,
  jobStatus,
  metric,
  runServices,
  sleep,
  startController,
  stopController,
  statuses,
  store,
  tasksOf,
  until,
  lab,
  type ControllerProcess,
} from '../support/jobs-lab.js';

const GROUP = 'jobs-g';
const ENV = 'jobs-a';
const LOG = `/tmp/berth-jobs-test-${process.pid}.log`;
const image = lab.image('v1');
let controller: ControllerProcess;

/** First time each (job, run, attempt) was seen in the Swarm, and the most `slow` runs seen going at once. */
const firstSeen = new Map<string, number>();
let slowAtOnce = 0;
let watching = true;
let watcher: Promise<void> = Promise.resolve();

async function watchSwarm(): Promise<void> {
  while (watching) {
    const services = await runServices(ENV).catch(() => []);
    for (const s of services) {
      const key = `${s.labels['berth.job']}/${s.labels['berth.job-run']}/${s.labels['berth.job-attempt']}`;
      if (!firstSeen.has(key)) firstSeen.set(key, Date.now());
    }
    const slow = services.filter((s) => s.labels['berth.job'] === 'slow');
    const tasks = await tasksOf(slow.map((s) => s.id)).catch(() => []);
    const going = new Set(tasks.filter((t) => ['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running'].includes(t.Status.State)).map((t) => t.ServiceID));
    slowAtOnce = Math.max(slowAtOnce, going.size);
    await sleep(200);
  }
}

before(async () => {
  await cleanSlate('jobs-', [ENV], GROUP);
  await store.apply(group(GROUP));
  await store.apply(
    jobsOnlyEnv(ENV, GROUP, {
      // allow: a run slowed down by a busy machine must not make the next tick skip.
      tick: { image, command: ['sh', '-c', 'echo run $BERTH_JOB_RUN; sleep 1'], schedule: '@every 5s', concurrency: 'allow', history: 2 },
      flaky: { image, command: ['sh', '-c', 'echo attempt $BERTH_JOB_ATTEMPT; sleep 1; test $BERTH_JOB_ATTEMPT -ge 3'], schedule: '@every 1h', retries: 3, backoff: '3s' },
      slow: { image, command: ['sh', '-c', 'sleep 7'], schedule: '@every 3s', concurrency: 'forbid', history: 1 },
      stuck: { image, command: ['sh', '-c', 'sleep 120'], schedule: '@every 1h', timeout: '4s', history: 1 },
    }),
  );
  controller = startController(LOG);
  watcher = watchSwarm();
});

after(async () => {
  watching = false;
  await watcher;
  try {
    await store.markDeleted(ENV);
    await until('cleanup: run services removed', async () => (await runServices(ENV)).length === 0, 30_000);
  } finally {
    await stopController(controller);
    await cleanSlate('jobs-', [ENV], GROUP);
  }
});

test('berth run starts flaky and stuck at once; the runs carry the job env vars, no healthcheck, the env constraint', async () => {
  await until('status with the jobs scheduled', async () => (await jobStatus(ENV, 'flaky'))?.nextRunAt);
  for (const job of ['flaky', 'stuck']) {
    const cli = spawnSync(process.execPath, ['bin/berth.js', 'run', 'env', ENV, job], { encoding: 'utf8', env: process.env });
    assert.equal(cli.status, 0, cli.stderr);
  }
  const [svc] = await until('flaky run 1 created', async () => {
    const s = await runServices(ENV, 'flaky');
    return s.length > 0 && s;
  }, 15_000);
  const spec = svc!.spec;
  assert.equal(svc!.name, `${ENV}_flaky_1`);
  assert.ok(spec.Mode.ReplicatedJob, 'a replicated-job service');
  // Docker answers with Go's field name, `Healthcheck`.
  assert.deepEqual(spec.TaskTemplate.ContainerSpec.Healthcheck, { Test: ['NONE'] });
  assert.ok(spec.TaskTemplate.ContainerSpec.Env.includes('BERTH_JOB_RUN=1'));
  assert.ok(spec.TaskTemplate.ContainerSpec.Env.includes('BERTH_JOB_ATTEMPT=1'));
  assert.deepEqual(spec.TaskTemplate.Placement.Constraints, [`node.labels.berth.env==${ENV}`]);
  assert.equal(svc!.labels['berth.job'], 'flaky');
  assert.equal(svc!.labels['com.docker.stack.namespace'], ENV);
  // The job's tag is pinned like a service's: the run starts the digest shown in the status.
  const digest = (await statuses.getStatus('Environment', ENV))?.jobImages?.flaky?.digest;
  assert.match(digest ?? '', /^sha256:[a-f0-9]{64}$/);
  assert.equal(spec.TaskTemplate.ContainerSpec.Image, `${image}@${digest}`);
});

test('timeout shorter than the run: the run is stopped and counted failed', async () => {
  const st = await until('stuck run 1 finished', async () => {
    const s = await jobStatus(ENV, 'stuck');
    return s?.finished[0] ? s : undefined;
  }, 20_000);
  const run = st.finished[0]!;
  assert.equal(run.result, 'failed');
  assert.match(run.message ?? '', /timed out after 4s/);
  const took = (Date.parse(run.finishedAt!) - Date.parse(run.startedAt)) / 1000;
  assert.ok(took >= 4 && took < 8, `stopped ${took}s after it started`);
  await until('the stopped run\'s service is gone', async () => (await runServices(ENV, 'stuck')).length === 0, 10_000);
  assert.equal(await metric(controller, 'berth_job_runs_total', 'job="stuck"', 'result="failed"'), 1);
});

test('a job that fails twice then succeeds: retried with growing delays, final success, two failures counted', async () => {
  const st = await until('flaky run 1 finished', async () => {
    const s = await jobStatus(ENV, 'flaky');
    return s?.finished[0] ? s : undefined;
  }, 40_000);
  const run = st.finished[0]!;
  assert.equal(run.result, 'succeeded');
  assert.equal(run.attempt, 3);
  assert.equal(await metric(controller, 'berth_job_runs_total', 'job="flaky"', 'result="failed"'), 2);
  assert.equal(await metric(controller, 'berth_job_runs_total', 'job="flaky"', 'result="succeeded"'), 1);
  const seen = [1, 2, 3].map((a) => firstSeen.get(`flaky/1/${a}`));
  assert.ok(seen.every((t) => t !== undefined), `every attempt seen in the Swarm: ${JSON.stringify(seen)}`);
  const gap12 = (seen[1]! - seen[0]!) / 1000;
  const gap23 = (seen[2]! - seen[1]!) / 1000;
  // Each attempt runs ~1-2 s; the backoff is 3 s, then 6 s.
  assert.ok(gap12 >= 3.5 && gap23 >= gap12 + 1.5, `delays grow: attempt 1→2 ${gap12}s, 2→3 ${gap23}s`);
  console.log(`# flaky: attempt 1→2 ${gap12}s, 2→3 ${gap23}s (backoff 3s, 6s)`);
  assert.ok((await metric(controller, 'berth_job_last_success_timestamp_seconds', 'job="flaky"')) > 0);
});

test('@every 5s: a run every ~5 s, results in status and metrics, history trimmed to its limit', async () => {
  const st = await until('tick: four runs finished', async () => {
    const s = await jobStatus(ENV, 'tick');
    return s && s.finished.length >= 4 ? s : undefined;
  }, 40_000);
  assert.ok(st.finished.every((r) => r.result === 'succeeded' && r.exitCode === 0), JSON.stringify(st.finished));
  const starts = st.finished.map((r) => Date.parse(r.scheduledAt!)).sort((a, b) => a - b);
  for (let i = 1; i < starts.length; i++) assert.equal(starts[i]! - starts[i - 1]!, 5_000, 'ticks 5 s apart, none skipped');
  for (const r of st.finished) {
    const lag = (Date.parse(r.startedAt) - Date.parse(r.scheduledAt!)) / 1000;
    assert.ok(lag < 3, `run ${r.run} started ${lag}s after its tick`);
  }
  assert.ok((await metric(controller, 'berth_job_runs_total', 'job="tick"', 'result="succeeded"')) >= 4);
  assert.ok((await metric(controller, 'berth_job_duration_seconds_count', 'job="tick"')) >= 4);
  assert.equal(await metric(controller, 'berth_job_interval_seconds', 'job="tick"'), 5);
  const last = await metric(controller, 'berth_job_last_success_timestamp_seconds', 'job="tick"');
  assert.ok(Math.abs(last * 1000 - Date.now()) < 10_000, 'last success is recent');
  // The finished runs' services beyond history: 2 (the going run aside).
  const active = new Set(((await jobStatus(ENV, 'tick'))?.active ?? []).map((r) => String(r.run)));
  const kept = (await runServices(ENV, 'tick')).filter((s) => !active.has(s.labels['berth.job-run']!));
  assert.ok(kept.length <= 2, `finished run services kept: ${kept.map((s) => s.name).join(', ')}`);
});

test('concurrency forbid with a run longer than the interval: never two runs at once', async () => {
  const st = await until('slow: two runs finished', async () => {
    const s = await jobStatus(ENV, 'slow');
    return s && s.finished.length >= 2 ? s : undefined;
  }, 40_000);
  assert.equal(slowAtOnce, 1, 'at most one slow run going at any time (seen in the Swarm)');
  assert.match(st.lastSkipped?.reason ?? '', /concurrency: forbid/);
  assert.ok(st.finished.every((r) => r.result === 'succeeded'));
});
