import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics } from '../../src/metrics/registry.js';
import { DeadlineExceededError, reconcileHandler, TerminalError, type ReconcileResult } from '../../src/runtime/handler.js';
import { WorkQueue } from '../../src/runtime/queue.js';
import { FakeClock } from '../support/fake-clock.js';
import { handlerDeps, metricValue, settle } from '../support/fake-runtime.js';

type Reconcile = (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;

/** A queue and a handler around `reconcile`; step() hands the next queued key to the handler. */
function setup(reconcile: Reconcile, timeoutMs = 60_000) {
  const clock = new FakeClock();
  const metrics = createMetrics();
  const queue = new WorkQueue({ clock, baseDelayMs: 100, maxDelayMs: 1_000 });
  const deps = handlerDeps({ queue, clock, reconcile, timeoutMs, metrics });
  const step = async () => {
    assert.equal(queue.depth, 1, 'a key is queued');
    const key = (await queue.get())!;
    try {
      return await reconcileHandler(deps, key);
    } finally {
      queue.done(key);
    }
  };
  return { clock, metrics, queue, step };
}

const results = (m: ReturnType<typeof createMetrics>, result: string) => metricValue(m.reconcilesTotal, { kind: 'env', result });

test('a thrown error re-queues the key with a backoff that doubles per failure, counted result=error', async () => {
  const { clock, metrics, queue, step } = setup(async () => {
    throw new Error('docker down');
  });
  queue.add('env/a');
  for (const delay of [100, 200, 400, 800, 1_000]) {
    assert.equal(await step(), 'error');
    clock.advance(delay - 1);
    assert.equal(queue.depth, 0, `not back before ${delay} ms`);
    clock.advance(1);
  }
  assert.equal(queue.retries('env/a'), 5);
  assert.equal(await results(metrics, 'error'), 5);
});

test('a TerminalError is not retried: forgotten, counted once as result=terminal', async () => {
  let runs = 0;
  const { clock, metrics, queue, step } = setup(async () => {
    runs++;
    throw new TerminalError('spec can never work');
  });
  queue.add('env/a');
  queue.addRateLimited('env/a'); // an earlier failure, so forgetting is visible
  clock.advance(1_000);
  assert.equal(await step(), 'terminal');
  clock.advance(3_600_000);
  assert.equal(queue.depth, 0, 'never re-queued');
  assert.equal(clock.pendingTimers, 0, 'no retry pending, deadline cleared');
  assert.equal(runs, 1);
  assert.equal(queue.retries('env/a'), 0, 'its backoff was forgotten');
  assert.equal(await results(metrics, 'terminal'), 1);
  assert.equal(await results(metrics, 'error'), 0);
});

test('a result with requeueAfterMs runs the key again after exactly that long, counted result=requeue_after', async () => {
  const { clock, metrics, queue, step } = setup(async () => ({ requeueAfterMs: 30_000 }));
  queue.add('env/a');
  assert.equal(await step(), 'requeue_after');
  clock.advance(29_999);
  assert.equal(queue.depth, 0);
  clock.advance(1);
  assert.equal(queue.depth, 1, 'back after 30 s');
  assert.equal(await results(metrics, 'requeue_after'), 1);
  assert.equal(await results(metrics, 'success'), 0);
});

test('success forgets the backoff: the next failure waits the first delay again', async () => {
  let fail = true;
  const { clock, metrics, queue, step } = setup(async () => {
    if (fail) throw new Error('etcd down');
  });
  queue.add('env/a');
  for (const delay of [100, 200, 400]) {
    await step();
    clock.advance(delay);
  }
  assert.equal(queue.retries('env/a'), 3);
  fail = false;
  assert.equal(await step(), 'success');
  assert.equal(queue.retries('env/a'), 0);
  assert.equal(queue.depth, 0, 'a success does not re-queue');
  assert.equal(await results(metrics, 'success'), 1);
  fail = true;
  queue.add('env/a');
  await step();
  clock.advance(99);
  assert.equal(queue.depth, 0);
  clock.advance(1);
  assert.equal(queue.depth, 1, 'first delay again, not 800 ms');
});

test('past the deadline the signal aborts; the reconcile counts as an error and is retried with backoff', async () => {
  let seen: AbortSignal | undefined;
  const { clock, metrics, queue, step } = setup((_key, signal) => {
    seen = signal;
    return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('request aborted')), { once: true }));
  }, 5_000);
  queue.add('env/a');
  const outcome = step();
  await settle();
  clock.advance(4_999);
  assert.equal(seen!.aborted, false, 'not before the deadline');
  clock.advance(1);
  assert.equal(seen!.aborted, true);
  assert.ok(seen!.reason instanceof DeadlineExceededError);
  assert.equal(await outcome, 'error');
  assert.equal(await results(metrics, 'error'), 1);
  clock.advance(100);
  assert.equal(queue.depth, 1, 'retried after the first backoff delay');
});

test('a reconcile that ignores its signal and returns after the deadline still counts as an error', async () => {
  let finish: () => void = () => {};
  const { clock, queue, step } = setup(() => new Promise<void>((resolve) => (finish = resolve)), 5_000);
  queue.add('env/a');
  const outcome = step();
  await settle();
  clock.advance(6_000);
  finish();
  assert.equal(await outcome, 'error');
  assert.equal(queue.retries('env/a'), 1);
});

test('the duration histogram measures the reconcile on the injected clock', async () => {
  let clock!: FakeClock;
  const s = setup(async () => {
    clock.advance(1_500);
  });
  clock = s.clock;
  s.queue.add('env/a');
  await s.step();
  const { values } = await s.metrics.reconcileDuration.get();
  const sum = values.find((v) => v.metricName === 'berth_reconcile_duration_seconds_sum' && v.labels.kind === 'env');
  assert.equal(sum?.value, 1.5);
});
