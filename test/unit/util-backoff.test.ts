import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../../src/util/backoff.js';

test('the delay doubles up to its cap and starts over after a reset', () => {
  const b = new Backoff(100, 500);
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 500, 500]);
  b.reset();
  assert.equal(b.next(), 100);
});
