import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { environmentSchema, groupSchema, type EnvironmentStatus } from '../../src/api/index.js';
import { EnvironmentReconciler } from '../../src/reconcile/reconciler-environment.js';
import { LABEL_JOB, LABEL_JOB_ATTEMPT, LABEL_JOB_RUN } from '../../src/swarm/labels.js';
import { FakeStore } from '../support/fake-store.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';
import { Registry } from 'prom-client';
import { createMetrics, type BerthMetrics } from '../../src/metrics/registry.js';
import { metricValue } from '../support/fake-runtime.js';

const log = pino({ level: 'silent' });
const T0 = Date.parse('2030-01-01T00:00:00Z');

function setup(metrics?: BerthMetrics) {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2)]);
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  store.envs.set(
    'qa',
    environmentSchema.parse({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Environment',
      metadata: { name: 'qa', generation: 1 },
      spec: { group: 'g', nodes: 1, services: { web: { image: 'reg:5000/web:v1' } }, jobs: { report: { image: 'reg:5000/web:v1', schedule: '@every 10s' } } },
    }),
  );
  const clock = { s: 0 };
  const r = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, now: () => new Date(T0 + clock.s * 1000), ...(metrics ? { metrics } : {}) });
  // Each status write, with the Swarm calls made before it.
  const writes: { calls: string[]; status: EnvironmentStatus }[] = [];
  const put = store.putEnvironmentStatus.bind(store);
  store.putEnvironmentStatus = async (name, status) => {
    await put(name, status);
    writes.push({ calls: [...swarm.calls], status });
  };
  return { swarm, store, r, clock, writes };
}

const jobService = (swarm: FakeSwarm) => swarm.services.find((s) => s.labels[LABEL_JOB] === 'report');

test("a due run is recorded in the status before its Swarm service is created, and the planner leaves the run's service alone", async () => {
  const { swarm, store, r, clock, writes } = setup();
  await r.reconcile('qa');
  await r.reconcile('qa');
  assert.equal(store.envStatus.get('qa')?.jobs?.report?.nextRunAt, new Date(T0 + 10_000).toISOString());
  clock.s = 10;
  const result = await r.reconcile('qa');
  const svc = jobService(swarm);
  assert.equal(svc?.name, 'qa_report_1');
  assert.equal(svc?.labels[LABEL_JOB_RUN], '1');
  assert.equal(svc?.labels[LABEL_JOB_ATTEMPT], '1');
  const recorded = writes.find((w) => w.status.jobs?.report?.active.some((a) => a.run === 1));
  assert.ok(recorded, 'run 1 written to the status');
  assert.equal(recorded.calls.filter((c) => c === 'createService').length, 1, 'only the web service existed when run 1 was recorded');
  assert.ok((result.requeueAfterMs ?? Infinity) <= 1_000, 'polls the going run');

  clock.s = 11;
  swarm.calls = [];
  await r.reconcile('qa');
  assert.deepEqual(swarm.calls.filter((c) => c === 'removeService' || c === 'createService'), [], 'a job run is not a stray service, nor started twice');
  assert.ok(jobService(swarm));
});

test('a leader that cannot write the status starts no run', async () => {
  const { swarm, store, r, clock } = setup();
  await r.reconcile('qa');
  await r.reconcile('qa');
  clock.s = 10;
  store.failNextStatusWrite = new Error('not the leader any more');
  await assert.rejects(r.reconcile('qa'), /not the leader/);
  assert.equal(jobService(swarm), undefined);
});

test('a job removed from the spec takes its run service, its state and its series with it', async () => {
  const metrics = createMetrics(new Registry());
  const { swarm, store, r, clock } = setup(metrics);
  await r.reconcile('qa');
  await r.reconcile('qa');
  clock.s = 10;
  await r.reconcile('qa');
  assert.ok(jobService(swarm));
  swarm.jobTaskStates.set('qa_report_1', 'complete');
  clock.s = 12;
  await r.reconcile('qa');
  assert.equal(await metricValue(metrics.jobRunsTotal, { env: 'qa', job: 'report', result: 'succeeded' }), 1);
  assert.equal(await metricValue(metrics.jobInterval, { env: 'qa', job: 'report' }), 10, 'the @every 10s interval, for the no-success alert');
  assert.equal(store.envStatus.get('qa')?.jobs?.report?.finished[0]?.result, 'succeeded');
  clock.s = 13;
  const env = store.envs.get('qa')!;
  store.envs.set('qa', { ...env, spec: { ...env.spec, jobs: {} } });
  await r.reconcile('qa');
  assert.equal(jobService(swarm), undefined);
  assert.equal(store.envStatus.get('qa')?.jobs, undefined);
  assert.ok(swarm.services.some((s) => s.name === 'qa_web'), 'the service stays');
  assert.deepEqual((await metrics.jobRunsTotal.get()).values, [], 'the series are gone');
  assert.deepEqual((await metrics.jobInterval.get()).values, []);
});
