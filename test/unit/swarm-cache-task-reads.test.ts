import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { SwarmCache } from '../../src/swarm/cache.js';
import { LABEL_ENV } from '../../src/swarm/labels.js';
import type { ObservedTask } from '../../src/swarm/model.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';

const log = pino({ level: 'silent' });
const turn = () => new Promise((r) => setImmediate(r));

/** A cache over services s1…sN of qa-1, synced, its event stream followed, every task list held until answered. */
async function started(services: number, opts: { idsPerList?: number; now?: () => number } = {}) {
  const swarm = new FakeSwarm([fakeNode(1, { labels: { [LABEL_ENV]: 'qa-1' } })]);
  const ids: string[] = [];
  for (let i = 1; i <= services; i++) {
    ids.push(await swarm.createService({ Name: `qa-1_s${i}`, Labels: { [LABEL_ENV]: 'qa-1' }, Mode: { Replicated: { Replicas: 1 } }, TaskTemplate: { ContainerSpec: { Image: 'web:v1' } } }));
  }
  const cache = new SwarmCache(swarm, { log, ...opts });
  const stop = new AbortController();
  const running = cache.run(stop.signal);
  await cache.waitForSync();
  await turn(); // the event stream is followed
  // Each task list reads the Swarm as it is when the call begins, and answers when the test says.
  const lists: { ids: string[]; answer: () => void }[] = [];
  const list = swarm.listTasks.bind(swarm);
  swarm.listTasks = async (serviceIds) => {
    const answer = list(serviceIds);
    answer.catch(() => undefined);
    await new Promise<void>((r) => lists.push({ ids: serviceIds, answer: r }));
    return answer;
  };
  swarm.calls = [];
  return { swarm, cache, ids, lists, stop: async () => (stop.abort(), await running) };
}

/** A container of the service died: its tasks are marked stale, nothing else. */
const containerDied = (swarm: FakeSwarm, serviceId: string) =>
  swarm.emitEvent({ type: 'container', action: 'die', id: `c-${serviceId}`, attributes: { [LABEL_ENV]: 'qa-1', 'com.docker.swarm.service.id': serviceId } });

/** Records when each read settles: `'ok'`, `'failed'`, or undefined while it waits. */
function track<T>(p: Promise<T>): { outcome: 'ok' | 'failed' | undefined; value: T | undefined; done: Promise<void> } {
  const t = { outcome: undefined as 'ok' | 'failed' | undefined, value: undefined as T | undefined, done: Promise.resolve() };
  t.done = p.then(
    (v) => ((t.outcome = 'ok'), (t.value = v), undefined),
    () => ((t.outcome = 'failed'), undefined),
  );
  return t;
}

test('readers that ask while a task list is on its way share the next one, and each waits only for it', async () => {
  const { swarm, cache, ids, lists, stop } = await started(4);
  const [a, b, c, d] = ids as [string, string, string, string];
  for (const id of ids) containerDied(swarm, id);
  swarm.scaleByHand('qa-1_s2', 2);
  const first = track(cache.listTasks([a]));
  await turn();
  const second = track(cache.listTasks([b, c]));
  const third = track(cache.listTasks([d]));
  await turn();
  assert.deepEqual(lists.map((l) => l.ids), [[a]], 'the others wait for the list on its way');
  lists[0]!.answer();
  await turn();
  assert.equal(first.outcome, 'ok');
  assert.deepEqual(lists.map((l) => l.ids), [[a], [b, c, d]], 'then one list for all of them');
  assert.equal(second.outcome, undefined);
  lists[1]!.answer();
  await Promise.all([second.done, third.done]);
  assert.deepEqual(second.value!.map((t) => t.serviceId), [b, b, c]);
  assert.deepEqual(third.value!.map((t) => t.serviceId), [d]);
  assert.equal(swarm.calls.length, 2);
  await stop();
});

test('the ids gathered are listed at most idsPerList a call, and a reader waits only for the calls holding its ids', async () => {
  const { swarm, cache, ids, lists, stop } = await started(6, { idsPerList: 2 });
  for (const id of ids) containerDied(swarm, id);
  const [head, ...rest] = ids as [string, ...string[]];
  void cache.listTasks([head]);
  await turn();
  const readers = rest.map((id) => track(cache.listTasks([id])));
  await turn();
  lists[0]!.answer();
  await turn();
  assert.deepEqual(lists.slice(1).map((l) => l.ids), [rest.slice(0, 2), rest.slice(2, 4), rest.slice(4)]);
  lists[2]!.answer();
  await turn();
  assert.deepEqual(readers.map((r) => r.outcome), [undefined, undefined, 'ok', 'ok', undefined], 'only the readers of the answered call');
  lists[1]!.answer();
  lists[3]!.answer();
  await Promise.all(readers.map((r) => r.done));
  assert.equal(swarm.calls.length, 4);
  await stop();
});

test('a reader whose tasks are stale is not served a list that began before it asked', async () => {
  let now = 0;
  const { swarm, cache, ids, lists, stop } = await started(1, { now: () => now });
  const [a] = ids as [string];
  swarm.unhealthyImages.add('web:v1');
  containerDied(swarm, a);
  const early = track(cache.listTasks([a]));
  await turn();
  lists[0]!.answer();
  await early.done;
  assert.equal(early.value![0]!.state, 'starting');
  now += 1_000; // unsettled, and older than the max age: stale, with no mark
  const first = track(cache.listTasks([a]));
  await turn();
  swarm.unhealthyImages.delete('web:v1'); // the task became healthy on its worker: no event
  const second = track(cache.listTasks([a]));
  lists[1]!.answer();
  await first.done;
  await turn();
  assert.equal(first.value![0]!.state, 'starting');
  assert.equal(second.outcome, undefined, 'the list on its way began before it asked');
  assert.equal(lists.length, 3);
  lists[2]!.answer();
  await second.done;
  assert.equal(second.value![0]!.state, 'running');
  await stop();
});

test('a reader whose tasks a list on its way took the mark of waits for that list, never served what it replaces', async () => {
  const { swarm, cache, ids, lists, stop } = await started(1);
  const [a] = ids as [string];
  swarm.scaleByHand('qa-1_s1', 3);
  containerDied(swarm, a);
  void cache.listTasks([a]);
  await turn();
  const other = track(cache.listTasks([a])); // not marked now: the list on its way took the mark
  await turn();
  assert.equal(other.outcome, undefined);
  lists[0]!.answer();
  await other.done;
  assert.equal(other.value!.length, 3);
  assert.equal(swarm.calls.length, 1, 'one list for both');
  await stop();
});

test('a failed shared list fails every reader waiting on it and marks its ids stale again: the next read lists them', async () => {
  const { swarm, cache, ids, lists, stop } = await started(3);
  const [a, b, c] = ids as [string, string, string];
  containerDied(swarm, a);
  void cache.listTasks([a]);
  await turn();
  containerDied(swarm, b);
  containerDied(swarm, c);
  const readers = [track(cache.listTasks([b])), track(cache.listTasks([c]))];
  await turn();
  swarm.failNext('listTasks');
  lists[0]!.answer();
  await turn();
  assert.deepEqual(lists[1]!.ids, [b, c]);
  lists[1]!.answer();
  await Promise.all(readers.map((r) => r.done));
  assert.deepEqual(readers.map((r) => r.outcome), ['failed', 'failed']);
  const again = track(cache.listTasks([b, c]));
  await turn();
  assert.deepEqual(lists[2]?.ids, [b, c], 'the settled services are listed again: their marks are back');
  lists[2]!.answer();
  await again.done;
  assert.equal(again.outcome, 'ok');
  assert.equal(swarm.calls.length, 3);
  await stop();
});
