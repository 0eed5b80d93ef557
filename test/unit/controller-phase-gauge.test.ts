import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { phaseGauge } from '../../src/controller/phase-gauge.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { FakeClock } from '../support/fake-clock.js';
import { metricValue, settle } from '../support/fake-runtime.js';
import { FakeStore } from '../support/fake-store.js';

function status(phase: 'Ready' | 'Degraded') {
  return { observedGeneration: 1, phase, conditions: [], nodes: [], services: {}, updatedAt: '2026-01-01T00:00:00Z' };
}

test('phase gauge: counts phases from one read of all statuses per round, and its waits leave no listener behind', async () => {
  const store = new FakeStore();
  store.envStatus.set('a', status('Ready') as never);
  store.envStatus.set('b', status('Ready') as never);
  store.envStatus.set('c', status('Degraded') as never);
  let singleReads = 0;
  let listReads = 0;
  const status$ = {
    listEnvironmentStatuses: () => (listReads++, store.listEnvironmentStatuses()),
    getEnvironmentStatus: (n: string) => (singleReads++, store.getEnvironmentStatus(n)),
  };
  const metrics = createMetrics();
  const clock = new FakeClock();
  const abort = new AbortController();
  const running = phaseGauge({ status: status$ as never, metrics, clock, intervalMs: 5_000 }).run(abort.signal);
  for (let round = 0; round < 100; round++) {
    await settle();
    clock.advance(5_000);
  }
  await settle();
  assert.equal(await metricValue(metrics.environments, { phase: 'Ready' }), 2);
  assert.equal(await metricValue(metrics.environments, { phase: 'Degraded' }), 1);
  assert.equal(await metricValue(metrics.environments, { phase: 'Failed' }), 0);
  assert.equal(listReads, 101);
  assert.equal(singleReads, 0, 'no read per environment');
  assert.ok(getEventListeners(abort.signal, 'abort').length <= 1, `abort listeners: ${getEventListeners(abort.signal, 'abort').length}`);
  abort.abort();
  await running;
  assert.equal(getEventListeners(abort.signal, 'abort').length, 0);
});

test('berth_deletions_held counts the orphan records by why they are held', async () => {
  const store = new FakeStore();
  const held = (reason: string) => ({ ...status('Ready'), conditions: [{ type: 'Orphaned', status: 'True', reason, message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] });
  store.envStatus.set('a', held('LastEnvironment') as never);
  store.envStatus.set('b', held('LastEnvironment') as never);
  store.envStatus.set('c', held('GracePeriod') as never);
  store.envStatus.set('d', status('Ready') as never);
  const metrics = createMetrics();
  const abort = new AbortController();
  const running = phaseGauge({ status: store, metrics, clock: new FakeClock(), intervalMs: 5_000 }).run(abort.signal);
  await settle();
  assert.equal(await metricValue(metrics.deletionsHeld, { reason: 'LastEnvironment' }), 2);
  assert.equal(await metricValue(metrics.deletionsHeld, { reason: 'GracePeriod' }), 1);
  assert.equal(await metricValue(metrics.deletionsHeld, { reason: 'MassDeletion' }), 0);
  abort.abort();
  await running;
});
