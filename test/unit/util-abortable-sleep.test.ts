import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { abortableSleep, childSignal } from '../../src/util/abortable-sleep.js';

/**
 * Whether `p` has settled by the end of this turn of the event loop: setImmediate runs after the
 * pending promise jobs, so a sleep that an abort ended has settled by then, and a sleep still
 * waiting for its timer has not. No clock is read and nothing waits for the sleep's duration.
 */
function settledThisTurn(p: Promise<unknown>): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);
}

const listeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

test('a sleep that runs its course leaves no abort listener behind', async () => {
  const ctl = new AbortController();
  for (let i = 0; i < 20; i++) await abortableSleep(0, ctl.signal);
  assert.equal(listeners(ctl.signal), 0);
});

test('an abort ends a long sleep at once, without throwing, and leaves no listener', async () => {
  const ctl = new AbortController();
  const sleeping = abortableSleep(60 * 60_000, ctl.signal);
  assert.equal(await settledThisTurn(sleeping), false, 'the sleep waits while the signal is not aborted');
  assert.equal(listeners(ctl.signal), 1, 'the sleep listens for the abort');
  ctl.abort(new Error('stop'));
  assert.equal(await settledThisTurn(sleeping), true, 'the abort ended the hour-long sleep within the same turn');
  await sleeping; // resolves: an abort is not an error for the caller
  assert.equal(listeners(ctl.signal), 0);
});

test('a sleep on an already aborted signal returns at once', async () => {
  const ctl = new AbortController();
  ctl.abort();
  assert.equal(await settledThisTurn(abortableSleep(60 * 60_000, ctl.signal)), true);
});

test('a child signal follows its parent and releases its listener', () => {
  const parent = new AbortController();
  const a = childSignal(parent.signal);
  a.release();
  assert.equal(listeners(parent.signal), 0);
  const b = childSignal(parent.signal);
  parent.abort();
  assert.equal(b.signal.aborted, true);
  assert.equal(a.signal.aborted, false);
});
