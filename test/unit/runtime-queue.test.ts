import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_TIMER_MS, withLongTimers } from '../../src/runtime/clock.js';
import { reconcileHandler } from '../../src/runtime/handler.js';
import { WorkQueue } from '../../src/runtime/queue.js';
import { runWorkers } from '../../src/runtime/workers.js';
import { FakeClock } from '../support/fake-clock.js';
import { handlerDeps } from '../support/fake-runtime.js';

const tick = () => new Promise((r) => setImmediate(r));

test('a key added several times is queued once', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  q.add('a');
  q.add('b');
  q.add('a');
  assert.equal(q.depth, 2);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
  assert.equal(q.depth, 0);
});

test('a key is never handed out twice at once; dirtied during its run it comes back after done', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  q.add('a');
  const first = await q.get();
  assert.equal(first, 'a');
  q.add('a'); // changed while processing
  assert.equal(q.depth, 0, 'not queued while processing');
  let second: string | undefined;
  void q.get().then((k) => (second = k));
  await tick();
  assert.equal(second, undefined, 'a second worker does not get the key being processed');
  q.done('a');
  await tick();
  assert.equal(second, 'a', 'requeued after done');
});

test('workers never run one key concurrently', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  const release: Array<() => void> = [];
  const workers = runWorkers(q, 3, async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    runs++;
    await new Promise<void>((r) => release.push(r));
    running--;
  });
  q.add('k');
  await tick();
  q.add('k');
  q.add('k');
  await tick();
  assert.equal(running, 1);
  release.shift()!();
  await tick();
  await tick();
  assert.equal(runs, 2, 'the dirtied key ran once more, not twice');
  release.shift()!();
  await tick();
  const stopped = q.shutdown();
  await stopped;
  await workers;
  assert.equal(maxRunning, 1);
});

test('failures back off exponentially, capped; success resets; retries are counted', async () => {
  const clock = new FakeClock();
  let retries = 0;
  const q = new WorkQueue({ clock, baseDelayMs: 100, maxDelayMs: 1_000, onRetry: () => retries++ });
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => q.backoffFor(n)), [100, 200, 400, 800, 1000, 1000]);
  q.addRateLimited('a');
  assert.equal(q.depth, 0);
  clock.advance(99);
  assert.equal(q.depth, 0);
  clock.advance(1);
  assert.equal(q.depth, 1);
  assert.equal(await q.get(), 'a');
  q.done('a');
  q.addRateLimited('a');
  clock.advance(199);
  assert.equal(q.depth, 0);
  clock.advance(1);
  assert.equal(q.depth, 1);
  assert.equal(q.retries('a'), 2);
  assert.equal(retries, 2);
  q.forget('a');
  assert.equal(q.retries('a'), 0);
});

test('a failing reconcile is retried with backoff until it succeeds, in zero real time', async () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock, baseDelayMs: 1_000, maxDelayMs: 4_000 });
  let attempts = 0;
  const deps = handlerDeps({
    queue: q,
    clock,
    reconcile: async () => {
      attempts++;
      if (attempts < 5) throw new Error('docker down');
    },
  });
  const workers = runWorkers(q, 1, (key) => reconcileHandler(deps, key));
  q.add('env/x');
  await tick();
  assert.equal(attempts, 1);
  for (const wait of [1_000, 2_000, 4_000, 4_000]) {
    clock.advance(wait - 1);
    await tick();
    const before: number = attempts;
    clock.advance(1);
    await tick();
    assert.equal(attempts, before + 1, `retried after ${wait} ms`);
  }
  assert.equal(attempts, 5);
  assert.equal(q.retries('env/x'), 0, 'success reset the backoff');
  assert.equal(clock.pendingTimers, 0);
  await q.shutdown();
  await workers;
});

test('addAfter keeps the earliest pending delay', () => {
  const clock = new FakeClock();
  const q = new WorkQueue({ clock });
  q.addAfter('a', 5_000);
  q.addAfter('a', 1_000);
  q.addAfter('a', 3_000);
  clock.advance(1_000);
  assert.equal(q.depth, 1);
  clock.advance(10_000);
  assert.equal(q.depth, 1, 'no second add');
});

test('shutdown stops handing out keys and waits for running ones', async () => {
  const q = new WorkQueue({ clock: new FakeClock() });
  q.add('a');
  q.add('b');
  const a = await q.get();
  let drained = false;
  const stopping = q.shutdown().then(() => (drained = true));
  assert.equal(await q.get(), undefined);
  q.add('c');
  await tick();
  assert.equal(drained, false, 'waits for a');
  q.done(a!);
  await stopping;
  assert.equal(drained, true);
});

test('a delay past setTimeout\'s limit (a 30-day ttl) fires once, when due, not after 1 ms', () => {
  const DAY = 86_400_000;
  const overflowing = new FakeClock();
  const spinning = new WorkQueue({ clock: overflowing });
  spinning.addAfter('ttl', 30 * DAY);
  overflowing.advance(1);
  assert.equal(spinning.depth, 1, 'the fake clock overflows as Node does: the bare timer fires at once');

  const clock = new FakeClock();
  const q = new WorkQueue({ clock: withLongTimers(clock) });
  q.addAfter('ttl', 30 * DAY);
  clock.advance(30 * DAY - 1);
  assert.equal(q.depth, 0, 'still waiting one millisecond before the end');
  clock.advance(1);
  assert.equal(q.depth, 1, 'queued when the 30 days have passed');
  assert.equal(clock.pendingTimers, 0, 'and nothing is left armed');
});

test('a long timer can be cleared between its chunks', () => {
  const clock = new FakeClock();
  const long = withLongTimers(clock);
  let fired = 0;
  const handle = long.setTimer(() => fired++, 3 * MAX_TIMER_MS);
  clock.advance(MAX_TIMER_MS + 10); // into the second chunk
  long.clearTimer(handle);
  clock.advance(3 * MAX_TIMER_MS);
  assert.equal(fired, 0);
  assert.equal(clock.pendingTimers, 0);
});
