import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { heapTrimmer } from '../../src/controller/heap-trim.js';
import { FakeClock } from '../support/fake-clock.js';

const log = pino({ level: 'silent' });
const settle = () => new Promise((r) => setImmediate(r));

test('heap trim: one full collection once the controller is idle after work, at most once per interval, never at rest', async () => {
  const clock = new FakeClock();
  let busySince: number | undefined;
  let collections = 0;
  const trim = heapTrimmer({ busySince: () => busySince, clock, log, collect: () => collections++, idleMs: 2_000, minIntervalMs: 60_000, pollMs: 1_000 });
  const stop = new AbortController();
  const running = trim.run(stop.signal);
  /** Advances one poll at a time, letting the loop run between them. */
  const advance = async (ms: number) => {
    for (let t = 0; t < ms; t += 1_000) {
      clock.advance(1_000);
      await settle();
    }
  };
  await advance(10_000);
  assert.equal(collections, 0, 'at rest from the start: nothing to give back');
  busySince = clock.now(); // a burst of work
  await advance(5_000);
  assert.equal(collections, 0, 'not while working');
  busySince = undefined;
  await advance(1_000);
  assert.equal(collections, 0, 'not before it has been idle for idleMs');
  await advance(2_000);
  assert.equal(collections, 1, 'once idle after work');
  await advance(30_000);
  assert.equal(collections, 1, 'once per burst');
  busySince = clock.now();
  await advance(1_000);
  busySince = undefined;
  await advance(5_000);
  assert.equal(collections, 1, 'another burst within the interval waits');
  await advance(30_000);
  assert.equal(collections, 2, 'and is trimmed once the interval passed');
  stop.abort();
  await running;
});
