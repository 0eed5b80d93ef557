import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics } from '../../src/metrics/registry.js';
import { Controller } from '../../src/runtime/controller.js';
import type { Reconciler } from '../../src/runtime/handler.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeSource, RecordingReconciler, settle, silentLog } from '../support/fake-runtime.js';

function controller(sources: FakeSource[], reconciler: Reconciler) {
  return new Controller({ name: 'test', sources, reconciler, workers: 2, clock: new FakeClock(), metrics: createMetrics(), log: silentLog });
}

test('keys from the sources reach the reconciler; ready once every source has synced', async () => {
  const etcd = new FakeSource('etcd');
  const docker = new FakeSource('docker');
  const r = new RecordingReconciler();
  const c = controller([etcd, docker], r);
  const abort = new AbortController();
  const running = c.run(abort.signal);
  etcd.push('env/a');
  docker.push('group/g');
  await settle();
  assert.deepEqual(r.ran.sort(), ['env/a', 'group/g']);
  assert.equal(c.ready(), false);
  etcd.markSynced();
  assert.equal(c.ready(), false, 'one source synced is not enough');
  docker.markSynced();
  assert.equal(c.ready(), true);
  abort.abort();
  await running;
  assert.ok(etcd.signal?.aborted && docker.signal?.aborted, 'the sources were stopped');
});

test('stopping takes no new key at once and waits for the running reconcile', async () => {
  const source = new FakeSource('etcd');
  const r = new RecordingReconciler(['env/slow']);
  const c = controller([source], r);
  const abort = new AbortController();
  let stopped = false;
  const running = c.run(abort.signal).then(() => (stopped = true));
  source.push('env/slow');
  await settle();
  abort.abort();
  source.push('env/late');
  await settle();
  assert.equal(stopped, false, 'still draining env/slow');
  r.release('env/slow');
  await running;
  assert.deepEqual(r.ran, ['env/slow'], 'env/late was never taken');
});

test('a source that fails stops the controller with its error', async () => {
  const good = new FakeSource('docker');
  const bad = new FakeSource('etcd');
  const c = controller([good, bad], new RecordingReconciler());
  const running = c.run(new AbortController().signal);
  await settle();
  bad.fail(new Error('watch broke'));
  await assert.rejects(running, /watch broke/);
  assert.equal(good.signal?.aborted, true, 'the other sources were stopped');
});

test('sixteen reconciles running at once raise no MaxListenersExceededWarning on the shared abandon signal', async () => {
  const keys = Array.from({ length: 16 }, (_, i) => `env/e${i}`);
  const source = new FakeSource('etcd');
  const r = new RecordingReconciler(keys);
  const c = new Controller({ name: 'test', sources: [source], reconciler: r, workers: 16, clock: new FakeClock(), metrics: createMetrics(), log: silentLog });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  const abort = new AbortController();
  const abandon = new AbortController();
  const running = c.run(abort.signal, abandon.signal);
  for (const k of keys) source.push(k);
  await settle();
  assert.equal(r.ran.length, 16, 'all sixteen are running');
  abandon.abort(new Error('term ended'));
  abort.abort();
  await running;
  await settle();
  process.off('warning', onWarning);
  assert.deepEqual(warnings, []);
  assert.ok(keys.every((k) => r.signals.get(k)?.aborted), 'each running reconcile was abandoned');
});
