import assert from 'node:assert/strict';
import { test } from 'node:test';
import { berthController } from '../../src/controller/berth-controller.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { SwarmCache } from '../../src/swarm/cache.js';
import { FakeClock } from '../support/fake-clock.js';
import { metricValue, settle, silentLog } from '../support/fake-runtime.js';
import { FakeStore } from '../support/fake-store.js';
import { fakeNode, FakeSwarm } from '../support/fake-swarm.js';
import { FakeResourceWatch } from '../support/fake-watch.js';
import { env, group } from '../support/fixtures.js';

function world() {
  const store = new FakeStore();
  const pool = group('qa-pool');
  const qa1 = env('qa-1');
  store.groups.set('qa-pool', pool);
  store.envs.set('qa-1', qa1);
  const swarm = new FakeSwarm([1, 2].map((n) => fakeNode(n, { labels: { pool: 'qa' } })));
  const watch = new FakeResourceWatch();
  const clock = new FakeClock();
  const metrics = createMetrics();
  const controller = berthController({ swarm: new SwarmCache(swarm, { log: silentLog }), installation: 'inst-a', store, routes: store, watch: watch.open, clock, metrics, log: silentLog, resyncMs: 30_000, fullResyncMs: 600_000, workers: 2 });
  return { store, swarm, watch, clock, metrics, controller, pool, qa1 };
}

test('berth wiring: the etcd relist reaches both reconcilers; ready once etcd, Docker events and resync synced', async () => {
  const { store, swarm, watch, metrics, controller, pool, qa1 } = world();
  const abort = new AbortController();
  const running = controller.run(abort.signal);
  await settle(20);
  assert.equal(controller.ready(), false, 'the etcd watch has not listed yet');
  watch.push({ type: 'relist', kind: 'all', revision: '1', items: [pool, qa1] });
  await settle(20);
  assert.equal(controller.ready(), true);
  assert.equal(store.groupStatus.get('qa-pool')?.poolNodes, 2, 'the group reconciler ran');
  assert.ok(store.envStatus.get('qa-1'), 'the environment reconciler ran');
  assert.ok(swarm.services.some((s) => s.name === 'qa-1_api'), 'and created its service');
  assert.ok((await metricValue(metrics.reconcilesTotal, { kind: 'EnvironmentGroup' })) >= 1);
  assert.ok((await metricValue(metrics.reconcilesTotal, { kind: 'Environment' })) >= 1);
  abort.abort();
  await running;
});

test('berth wiring: a key that is not berth\'s is a terminal error, not retried', async () => {
  const { metrics, controller } = world();
  const abort = new AbortController();
  const running = controller.run(abort.signal);
  controller.queue.add('pod/x');
  await settle(20);
  assert.equal(await metricValue(metrics.reconcilesTotal, { kind: 'unknown', result: 'terminal' }), 1);
  assert.equal(controller.queue.retries('pod/x'), 0);
  abort.abort();
  await running;
});
