import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { abortableSleep, childSignal } from '../../src/util/abortable-sleep.js';

test('sleeping many times leaves no abort listener behind', async () => {
  const ctl = new AbortController();
  for (let i = 0; i < 20; i++) await abortableSleep(0, ctl.signal);
  assert.equal(getEventListeners(ctl.signal, 'abort').length, 0);
});

test('an abort ends the sleep early without throwing', async () => {
  const ctl = new AbortController();
  const sleeping = abortableSleep(60_000, ctl.signal);
  ctl.abort();
  await sleeping;
  assert.equal(ctl.signal.aborted, true);
});

test('a child signal follows its parent and releases its listener', () => {
  const parent = new AbortController();
  const a = childSignal(parent.signal);
  a.release();
  assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
  const b = childSignal(parent.signal);
  parent.abort();
  assert.equal(b.signal.aborted, true);
  assert.equal(a.signal.aborted, false);
});
