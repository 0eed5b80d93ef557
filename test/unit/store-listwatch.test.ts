import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { listWatch, type Delivery, type KeyDecoder, type RestartReason } from '../../src/store/listwatch.js';
import { FakeKeyRange } from '../support/fake-key-range.js';

/** Objects are numbers under /p/n/<name>; anything else under /p/ is not watched. */
const numbers: KeyDecoder<number> = {
  owns: (key) => key.startsWith('/p/n/'),
  decode: (key, value) => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new Error(`${key}: not a number`);
    return n;
  },
};

/** Lets every queued callback run (no timer, no wall clock). */
const settle = () => new Promise((r) => setImmediate(r));

function start(t: TestContext, range: FakeKeyRange, opts: { fromRevision?: string } = {}) {
  const deliveries: Delivery<number>[] = [];
  const restarts: RestartReason[] = [];
  const invalid: string[] = [];
  const delays: number[] = [];
  const w = listWatch(range, {
    prefix: '/p/',
    decoder: numbers,
    deliver: (d) => deliveries.push({ ...d, items: new Map(d.items) }),
    onInvalid: (key) => invalid.push(key),
    onRestart: (reason) => restarts.push(reason),
    // Zero wall-clock time, but a turn of the event loop, so a loop that keeps failing cannot starve the test.
    delay: (ms) => {
      delays.push(ms);
      return new Promise<void>((r) => setImmediate(r));
    },
    ...opts,
  });
  // Closed even when an assertion fails: a loop left running would keep the test process alive.
  t.after(() => w.close());
  const changes = () => deliveries.flatMap((d) => d.changes.map((c) => (c.type === 'put' ? `put ${c.key}=${c.object}` : `delete ${c.key}`)));
  return { w, deliveries, restarts, invalid, delays, changes };
}

test('lists first, then delivers one batch per transaction in revision order, leaving out keys it does not own', async (t) => {
  const range = new FakeKeyRange();
  range.put('/p/n/a', '1');
  const s = start(t, range);
  await settle();
  assert.equal(s.deliveries.length, 1);
  assert.deepEqual([s.deliveries[0]!.relisted, s.deliveries[0]!.revision, [...s.deliveries[0]!.items]], [true, range.revision, [['/p/n/a', 1]]]);
  range.txn([{ put: ['/p/n/b', '2'] }, { del: '/p/n/a' }, { put: ['/p/other', 'x'] }]);
  range.put('/p/other', 'y');
  range.put('/p/n/b', '3');
  await settle();
  assert.deepEqual(s.changes(), ['put /p/n/a=1', 'put /p/n/b=2', 'delete /p/n/a', 'put /p/n/b=3']);
  assert.equal(s.deliveries.length, 3, 'the transaction came as one delivery; the foreign-only one as none');
  assert.deepEqual([...s.deliveries.at(-1)!.items], [['/p/n/b', 3]]);
  assert.equal(s.w.revision, range.revision);
});

test('a broken stream resumes from the last delivered revision + 1, without a relist, after a backoff delay', async (t) => {
  const range = new FakeKeyRange();
  const s = start(t, range);
  await settle();
  range.put('/p/n/a', '1');
  await settle();
  const resumeFrom = String(Number(range.revision) + 1);
  range.breakStreams();
  range.put('/p/n/a', '2');
  range.put('/p/n/b', '5');
  await settle();
  await settle();
  assert.deepEqual(s.restarts, ['disconnected']);
  assert.equal(range.lists, 1, 'no relist');
  assert.equal(range.watchedFrom.at(-1), resumeFrom);
  assert.deepEqual(s.changes(), ['put /p/n/a=1', 'put /p/n/a=2', 'put /p/n/b=5']);
  assert.deepEqual(s.delays, [100]);
  range.down = true;
  range.breakStreams();
  for (let i = 0; i < 6; i++) await settle();
  range.down = false;
  for (let i = 0; i < 6; i++) await settle();
  assert.deepEqual(s.delays.slice(0, 4), [100, 100, 200, 400], 'a connection started the delay over; failures double it');
  assert.equal(range.openStreams, 1, 'connected again once etcd was back');
});

test('a compacted start revision relists at once, and what vanished meanwhile gets a delete', async (t) => {
  const range = new FakeKeyRange();
  range.put('/p/n/a', '1');
  range.put('/p/n/b', '2');
  const s = start(t, range);
  await settle();
  range.breakStreams();
  range.del('/p/n/a');
  range.put('/p/n/b', '7');
  range.put('/p/n/c', '3');
  range.compact();
  await settle();
  await settle();
  await settle();
  assert.deepEqual(s.restarts, ['disconnected', 'compacted']);
  assert.equal(range.lists, 2, 'relisted');
  const relist = s.deliveries.at(-1)!;
  assert.equal(relist.relisted, true);
  assert.deepEqual(
    relist.changes.map((c) => `${c.type} ${c.key}`),
    ['delete /p/n/a', 'put /p/n/b', 'put /p/n/c'],
  );
  assert.deepEqual([...relist.items], [['/p/n/b', 7], ['/p/n/c', 3]]);
  assert.equal(range.watchedFrom.at(-1), String(Number(range.revision) + 1), 'watches again from the list revision + 1');
  range.put('/p/n/c', '4');
  await settle();
  assert.deepEqual(s.changes().at(-1), 'put /p/n/c=4');
});

test('an invalid value is reported and counts as absent, in a list as in a watch', async (t) => {
  const range = new FakeKeyRange();
  range.put('/p/n/bad', 'x');
  range.put('/p/n/a', '1');
  const s = start(t, range);
  await settle();
  assert.deepEqual([...s.deliveries[0]!.items], [['/p/n/a', 1]]);
  assert.deepEqual(s.invalid, ['/p/n/bad']);
  range.put('/p/n/a', 'oops');
  range.put('/p/n/new-bad', 'y');
  await settle();
  assert.deepEqual(s.invalid, ['/p/n/bad', '/p/n/a', '/p/n/new-bad']);
  assert.deepEqual(s.changes().slice(1), ['delete /p/n/a'], 'a valid object turned invalid is deleted; a new invalid key is not delivered');
});

test('a failed list is retried with a doubling delay; other cancellations relist after a delay too, doubling while they repeat', async (t) => {
  const range = new FakeKeyRange();
  range.failLists = 3;
  const s = start(t, range);
  for (let i = 0; i < 5; i++) await settle();
  assert.equal(range.lists, 4);
  assert.deepEqual(s.delays, [100, 200, 400]);
  assert.equal(s.deliveries.length, 1);
  range.cancelStreams();
  for (let i = 0; i < 3; i++) await settle();
  assert.deepEqual(s.restarts, ['canceled']);
  assert.deepEqual(s.delays, [100, 200, 400, 100], 'the successful list started the delay over');
  assert.equal(range.lists, 5);
  assert.equal(s.deliveries.at(-1)?.relisted, true);
  range.refuseWatches = true;
  range.cancelStreams();
  for (let i = 0; i < 8; i++) await settle();
  assert.deepEqual(s.delays.slice(4, 7), [100, 200, 400], 'lists that work do not reset the delay while etcd refuses every watch');
});

test('from a given revision: no first list, deletes pass even for keys never seen', async (t) => {
  const range = new FakeKeyRange();
  range.put('/p/n/a', '1');
  const from = String(Number(range.revision) + 1);
  range.put('/p/n/a', '2');
  range.del('/p/n/a');
  const s = start(t, range, { fromRevision: from });
  await settle();
  assert.equal(range.lists, 0);
  assert.deepEqual(s.changes(), ['put /p/n/a=2', 'delete /p/n/a']);
});

test('close stops every delivery and cancels the stream', async (t) => {
  const range = new FakeKeyRange();
  const s = start(t, range);
  await settle();
  assert.equal(range.openStreams, 1);
  await s.w.close();
  assert.equal(range.openStreams, 0);
  range.put('/p/n/a', '1');
  await settle();
  assert.equal(s.deliveries.length, 1);
});

test('an object is decoded with its key mod revision: in a list, that of its last write, not the list revision; in an event, the event revision', async (t) => {
  const range = new FakeKeyRange();
  range.put('/p/n/a', '1');
  const aWritten = range.revision;
  range.put('/p/n/b', '2');
  const seen: string[] = [];
  const w = listWatch(range, {
    prefix: '/p/',
    decoder: { ...numbers, decode: (key, value, modRevision) => (seen.push(`${key}@${modRevision}`), numbers.decode(key, value, modRevision)) },
    deliver: () => undefined,
  });
  t.after(() => w.close());
  await settle();
  assert.notEqual(aWritten, range.revision);
  assert.deepEqual(seen, [`/p/n/a@${aWritten}`, `/p/n/b@${range.revision}`]);
  range.put('/p/n/a', '3');
  await settle();
  assert.deepEqual(seen.at(-1), `/p/n/a@${range.revision}`);
});
