/**
 * A scheduled job across a leader failover on the real lab: two controllers, the leader killed
 * (SIGKILL: no resignation, the standby waits for the lease to expire) while a run is going.
 * The standby takes the run over from the persisted state without starting it again, and the
 * tick that fell while there was no leader runs once. Names are prefixed `jobs-`. Run under
 * `flock /tmp/berth-lab-tests.lock`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  alive,
  cleanSlate,
  group,
  jobsOnlyEnv,
  jobStatus,
  lab,
  metric,
  runServices,
  startController,
  stopController,
  store,
  tasksOf,
  sleep,
  until,
  type ControllerProcess,
} from '../support/jobs-lab.js';

const GROUP = 'jobs-fg';
const ENV = 'jobs-f';
const LOG = `/tmp/berth-jobs-failover-test-${process.pid}.log`;
const controllers: ControllerProcess[] = [];

const leads = async (c: ControllerProcess) => alive(c) && (await metric(c, 'berth_leader').catch(() => 0)) === 1;

before(async () => {
  await cleanSlate('jobs-f', [ENV], GROUP);
  await store.apply(group(GROUP));
  await store.apply(jobsOnlyEnv(ENV, GROUP, { long: { image: lab.image('v1'), command: ['sh', '-c', 'sleep 8'], schedule: '@every 10s', concurrency: 'forbid', history: 5 } }));
});

after(async () => {
  const survivor = controllers.find(alive) ?? startController(LOG);
  try {
    await store.markDeleted(ENV);
    await until('cleanup: run services removed', async () => (await runServices(ENV)).length === 0, 40_000);
  } finally {
    for (const c of [...controllers, survivor]) await stopController(c);
    await cleanSlate('jobs-f', [ENV], GROUP);
  }
});

test('the leader killed while a run is going: the standby takes it over without a second run for that tick', async () => {
  const a = startController(LOG);
  controllers.push(a);
  await until('controller A leads', () => leads(a), 30_000);
  const b = startController(LOG);
  controllers.push(b);
  await until('controller B is up (standby)', async () => alive(b) && (await metric(b, 'berth_leader')) === 0, 30_000);

  const [run1] = await until('run 1 going', async () => {
    const s = await runServices(ENV, 'long');
    const tasks = await tasksOf(s.map((x) => x.id));
    return s.length === 1 && tasks.some((t) => t.Status.State === 'running') && s;
  }, 30_000);
  const before = await jobStatus(ENV, 'long');
  assert.equal(before?.active[0]?.run, 1, 'run 1 is in the persisted state');
  const tick1 = Date.parse(before!.active[0]!.scheduledAt!);

  // Killed 6 s into run 1 (it takes ~8 s): the lease (10 s, renewed every few seconds) outlives
  // tick 2, 10 s after tick 1, which then falls while there is no leader.
  await sleep(Math.max(0, tick1 + 6_000 - Date.now()));
  assert.ok((await tasksOf([run1!.id])).some((t) => t.Status.State === 'running'), 'run 1 is still going when the leader dies');
  a.child.kill('SIGKILL');
  const killedAt = Date.now();
  await until('controller B leads', () => leads(b), 30_000);
  const tookOverAt = Date.now();

  const st = await until('runs 1 and 2 finished', async () => {
    const s = await jobStatus(ENV, 'long');
    return s && s.finished.length >= 2 ? s : undefined;
  }, 40_000);
  const runs = [...st.finished].sort((x, y) => x.run - y.run);
  const [r1, r2] = runs;
  assert.equal(r1?.run, 1);
  assert.equal(r1?.result, 'succeeded');
  assert.equal(r1?.attempt, 1, 'run 1 was not started again');
  assert.equal(r2?.run, 2);
  // Run 1's service is the one created before the kill, with one task: it ran exactly once.
  const now1 = (await runServices(ENV, 'long')).find((s) => s.labels['berth.job-run'] === '1');
  assert.equal(now1?.id, run1!.id);
  assert.equal((await tasksOf([run1!.id])).length, 1);
  // Every tick ran at most once; the one that fell while there was no leader ran once, on takeover.
  const ticks = [...st.active, ...st.finished].map((r) => r.scheduledAt);
  assert.equal(new Set(ticks).size, ticks.length, `no tick ran twice: ${ticks.join(', ')}`);
  assert.equal(Date.parse(r2!.scheduledAt!), tick1 + 10_000, 'run 2 is the next tick after run 1');
  assert.ok(Date.parse(r2!.scheduledAt!) < tookOverAt - 1_000, 'tick 2 fell while there was no leader');
  assert.ok(Date.parse(r2!.startedAt) >= killedAt, 'the tick missed without a leader ran on takeover');
  assert.ok((await metric(b, 'berth_job_runs_total', 'job="long"', 'result="succeeded"')) >= 1, 'the new leader recorded run 1');
  console.log(`# failover: killed ${((killedAt - tick1) / 1000).toFixed(1)}s after tick 1, standby led ${((tookOverAt - killedAt) / 1000).toFixed(1)}s later; run 2 (tick ${new Date(Date.parse(r2!.scheduledAt!)).toISOString()}) started ${((Date.parse(r2!.startedAt) - Date.parse(r2!.scheduledAt!)) / 1000).toFixed(1)}s after its tick`);
});
