import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forEachLimited } from '../../src/util/limited.js';

test('forEachLimited: never more than the limit at once, every item done, the first failure thrown after all settled', async () => {
  let running = 0;
  let peak = 0;
  const done: number[] = [];
  const items = Array.from({ length: 20 }, (_, i) => i);
  await assert.rejects(
    forEachLimited(items, 4, async (i) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setImmediate(r));
      running--;
      done.push(i);
      if (i === 3 || i === 7) throw new Error(`item ${i}`);
    }),
    /item 3/,
  );
  assert.equal(peak, 4);
  assert.deepEqual(done.sort((a, b) => a - b), items);
});
