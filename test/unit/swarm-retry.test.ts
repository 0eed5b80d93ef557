import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdapterError } from '../../src/api/errors.js';
import { withRetry } from '../../src/swarm/retry.js';

/** A call that fails with each of `errors` in turn, then answers `ok`. */
function flaky(errors: unknown[]): { fn: () => Promise<string>; attempts: () => number } {
  let attempts = 0;
  return {
    fn: async () => {
      const err = errors[attempts++];
      if (err !== undefined) throw err;
      return 'ok';
    },
    attempts: () => attempts,
  };
}

const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const conflict = Object.assign(new Error('update out of sequence'), { statusCode: 409 });
const noDelay = { minTimeoutMs: 0 };

test('a call that answers at once is made once', async () => {
  const call = flaky([]);
  assert.equal(await withRetry('listTasks', call.fn, noDelay), 'ok');
  assert.equal(call.attempts(), 1);
});

test('a recoverable failure is tried again, up to the retries: three attempts in all for two', async () => {
  const twice = flaky([reset, reset]);
  assert.equal(await withRetry('listTasks', twice.fn, { ...noDelay, retries: 2 }), 'ok');
  assert.equal(twice.attempts(), 3);
  const always = flaky([reset, reset, reset, reset]);
  const errors: string[] = [];
  await assert.rejects(withRetry('listTasks', always.fn, { ...noDelay, retries: 2, onError: (op) => errors.push(op) }), (err: unknown) => err instanceof AdapterError && err.recoverable);
  assert.equal(always.attempts(), 3, 'one attempt and two retries');
  assert.deepEqual(errors, ['listTasks']);
});

test('a failure that would fail the same way again is not retried', async () => {
  const call = flaky([conflict]);
  const errors: string[] = [];
  await assert.rejects(withRetry('updateService', call.fn, { ...noDelay, onError: (op) => errors.push(op) }), (err: unknown) => err instanceof AdapterError && !err.recoverable && /out of sequence/.test(err.message));
  assert.equal(call.attempts(), 1);
  assert.deepEqual(errors, ['updateService']);
});

test('a call that throws before it returns a promise is a failed attempt, retried as any', async () => {
  let attempts = 0;
  const fn = (): Promise<string> => {
    if (attempts++ === 0) throw reset;
    return Promise.resolve('ok');
  };
  assert.equal(await withRetry('listTasks', fn, noDelay), 'ok');
  assert.equal(attempts, 2);
});
