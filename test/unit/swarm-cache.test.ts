import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { SwarmCache, type SwarmChange } from '../../src/swarm/cache.js';
import { LABEL_ENV, LABEL_JOB } from '../../src/swarm/labels.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';

const log = pino({ level: 'silent' });

function serviceSpec(env: string, name: string, replicas = 2, image = 'web:v1') {
  return {
    Name: `${env}_${name}`,
    Labels: { [LABEL_ENV]: env },
    Mode: { Replicated: { Replicas: replicas } },
    TaskTemplate: { ContainerSpec: { Image: image } },
  };
}

async function started(opts: { now?: () => number } = {}) {
  const swarm = new FakeSwarm([fakeNode(1, { labels: { [LABEL_ENV]: 'qa-1' } }), fakeNode(2, { labels: { [LABEL_ENV]: 'qa-2' } })]);
  const api = await swarm.createService(serviceSpec('qa-1', 'api'));
  await swarm.createService(serviceSpec('qa-2', 'api'));
  const changes: SwarmChange[] = [];
  const cache = new SwarmCache(swarm, { log, ...(opts.now ? { now: opts.now } : {}) });
  cache.subscribe((c) => changes.push(c));
  const stop = new AbortController();
  const running = cache.run(stop.signal);
  await cache.waitForSync();
  swarm.calls = [];
  return { swarm, cache, changes, api, stop: async () => (stop.abort(), await running) };
}

test('after the first list, reads of a converged Swarm make no Docker call', async () => {
  const { swarm, cache, api, stop } = await started();
  for (let i = 0; i < 5; i++) {
    assert.equal((await cache.listNodes()).length, 2);
    assert.deepEqual((await cache.listServices('qa-1')).map((s) => s.name), ['qa-1_api']);
    assert.equal((await cache.listTasks([api])).length, 2);
  }
  assert.deepEqual(swarm.calls, []);
  await stop();
});

test('a service event costs one inspect at the next read, and its environment is told at once', async () => {
  const { swarm, cache, changes, api, stop } = await started();
  swarm.scaleByHand('qa-1_api', 3);
  for (let i = 0; i < 4; i++) swarm.emitEvent({ type: 'service', action: 'update', id: api, attributes: { name: 'qa-1_api' } });
  assert.deepEqual(changes.map((c) => c.env), ['qa-1', 'qa-1', 'qa-1', 'qa-1']);
  const [svc] = await cache.listServices('qa-1');
  assert.equal(svc!.replicas, 3);
  assert.equal((await cache.listTasks([api])).length, 3);
  assert.deepEqual(swarm.calls, ['inspectService', 'listTasks']);
  await stop();
});

test('healthcheck exec events are dropped: no change is announced and nothing is read again', async () => {
  const { swarm, cache, changes, api, stop } = await started();
  const attributes = { [LABEL_ENV]: 'qa-1', 'com.docker.swarm.service.id': api };
  for (const action of ['exec_create: wget -q', 'exec_start: wget -q', 'exec_die', 'attach', 'top']) {
    swarm.emitEvent({ type: 'container', action, id: 'c1', attributes });
  }
  assert.deepEqual(changes, []);
  await cache.listTasks([api]);
  assert.deepEqual(swarm.calls, []);
  swarm.emitEvent({ type: 'container', action: 'health_status: unhealthy', id: 'c1', attributes });
  assert.deepEqual(changes, [{ type: 'container', action: 'health_status: unhealthy', env: 'qa-1' }]);
  await cache.listTasks([api]);
  assert.deepEqual(swarm.calls, ['listTasks']);
  await stop();
});

test('tasks of a service that has not settled are listed again once older than the max age; settled ones never', async () => {
  let now = 0;
  const { swarm, cache, api, stop } = await started({ now: () => now });
  const slow = await cache.createService(serviceSpec('qa-1', 'slow', 1, 'web:slow'));
  swarm.unhealthyImages.add('web:slow');
  await cache.listServices();
  assert.equal((await cache.listTasks([slow]))[0]!.state, 'starting');
  swarm.calls = [];
  now += 500;
  await cache.listTasks([slow, api]);
  assert.deepEqual(swarm.calls, [], 'younger than the max age');
  now += 600;
  await cache.listTasks([slow, api]);
  assert.deepEqual(swarm.calls, ['listTasks'], 'unsettled and old: listed again');
  swarm.unhealthyImages.delete('web:slow');
  now += 1_000;
  assert.equal((await cache.listTasks([slow]))[0]!.state, 'running');
  swarm.calls = [];
  now += 60_000;
  await cache.listTasks([slow, api]);
  assert.deepEqual(swarm.calls, [], 'settled: read from the cache however old');
  await stop();
});

test('a reconnect relists, and a service that vanished meanwhile is announced as removed', async () => {
  const { swarm, cache, changes, stop } = await started();
  const gone = swarm.services.find((s) => s.name === 'qa-2_api')!;
  swarm.services = swarm.services.filter((s) => s !== gone);
  swarm.reconnectEvents();
  await waitFor(() => changes.length > 1);
  assert.deepEqual(changes, [
    { type: 'service', action: 'remove', env: 'qa-2' },
    { type: 'relist', action: 'reconnect', env: undefined },
  ]);
  assert.deepEqual((await cache.listServices()).map((s) => s.name), ['qa-1_api']);
  assert.deepEqual(swarm.calls.sort(), ['listNodes', 'listServices', 'listTasks']);
  await stop();
});

test('writes go through and are read back: a reconcile sees what it just did', async () => {
  const { swarm, cache, api, stop } = await started();
  const id = await cache.createService(serviceSpec('qa-1', 'worker', 1));
  const [svc] = (await cache.listServices('qa-1')).filter((s) => s.id === id);
  assert.equal(svc!.name, 'qa-1_worker');
  const before = (await cache.listServices('qa-1')).find((s) => s.id === api)!;
  await cache.scaleService(api, before.version, 4);
  assert.equal((await cache.listServices('qa-1')).find((s) => s.id === api)!.replicas, 4);
  assert.equal((await cache.listTasks([api])).length, 4);
  await cache.removeService(id);
  assert.equal((await cache.listServices('qa-1')).some((s) => s.id === id), false);
  const node = (await cache.listNodes()).find((n) => n.id === 'node2')!;
  await cache.updateNodeLabels('node2', node.version, { ...node.labels, [LABEL_ENV]: 'qa-1' });
  assert.equal((await cache.listNodes()).find((n) => n.id === 'node2')!.labels[LABEL_ENV], 'qa-1');
  assert.equal(swarm.calls.filter((c) => c === 'listServices' || c === 'listNodes').length, 0, 'no full list for a write');
  await stop();
});

test('a foreign service (no berth.env label) is never held', async () => {
  const { swarm, cache, stop } = await started();
  const id = swarm.addForeignService('monitoring_agent');
  swarm.emitEvent({ type: 'service', action: 'create', id, attributes: { name: 'monitoring_agent' } });
  assert.equal((await cache.listServices()).some((s) => s.id === id), false);
  await stop();
});

test('the first list is retried until Docker answers', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  swarm.failNext('listNodes');
  swarm.failNext('listNodes');
  const waits: number[] = [];
  const cache = new SwarmCache(swarm, { log, sleep: async (ms) => void waits.push(ms) });
  const stop = new AbortController();
  const running = cache.run(stop.signal);
  await cache.waitForSync();
  assert.deepEqual(waits, [500, 1_000]);
  assert.equal((await cache.listNodes()).length, 1);
  stop.abort();
  await running;
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), 'condition not reached');
}

test('a relist does not undo what was read or written while its list was on its way', async () => {
  const { swarm, cache, stop } = await started();
  // The relist's list of services is answered as it stood when the call was made, but only
  // after a write and a read have gone through the cache.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const listServices = swarm.listServices.bind(swarm);
  swarm.listServices = async (env?: string) => {
    const answer = await listServices(env);
    await gate;
    return answer;
  };
  const relisting = cache.relist();
  const id = await cache.createService(serviceSpec('qa-1', 'late', 1));
  assert.ok((await cache.listServices('qa-1')).some((s) => s.id === id), 'read back at once');
  release();
  await relisting;
  assert.ok((await cache.listServices('qa-1')).some((s) => s.id === id), 'still there after the older list was applied');
  assert.equal((await cache.listTasks([id])).length, 1);
  await stop();
});

/** A cache whose periodic lists each wait for the test to let them go. */
async function periodic(opts: { taskResyncEveryMs?: number; relistEveryMs?: number }) {
  const swarm = new FakeSwarm([fakeNode(1, { labels: { [LABEL_ENV]: 'qa-1' } }), fakeNode(2, { labels: { [LABEL_ENV]: 'qa-2' } })]);
  await swarm.createService(serviceSpec('qa-1', 'api', 1, 'web:v1'));
  await swarm.createService(serviceSpec('qa-2', 'api', 1, 'web:v2'));
  const ticks: Array<{ ms: number; go: () => void }> = [];
  const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((r) => {
    ticks.push({ ms, go: r });
    signal.addEventListener('abort', () => r(), { once: true });
  });
  const cache = new SwarmCache(swarm, { log, ...opts, sleep, random: () => 1 });
  const changes: SwarmChange[] = [];
  cache.subscribe((c) => changes.push(c));
  const stop = new AbortController();
  const running = cache.run(stop.signal);
  await cache.waitForSync();
  /** Lets the next periodic list go and waits until it made `calls` calls and waits again; returns what it waited. */
  const tick = async (calls: number) => {
    await waitFor(() => ticks.length > 0);
    const before = swarm.calls.length;
    const { ms, go } = ticks.shift()!;
    go();
    await waitFor(() => swarm.calls.length >= before + calls && ticks.length > 0);
    return ms;
  };
  return { swarm, cache, changes, tick, stop: async () => (stop.abort(), await running) };
}

test('the periodic task list (one call) announces only what changed without an event: a task that died on a worker, for its environment alone', async () => {
  const { swarm, changes, tick, stop } = await periodic({ taskResyncEveryMs: 30_000 });
  swarm.calls = [];
  assert.equal(await tick(1), 33_000, 'the period, drawn from ±10 %');
  assert.deepEqual(changes, [], 'nothing changed: nothing announced');
  swarm.unhealthyImages.add('web:v1'); // qa-1's task is restarting on its worker: no event reaches the manager
  await tick(1);
  assert.deepEqual(changes, [{ type: 'service', action: 'update', env: 'qa-1' }]);
  assert.deepEqual(swarm.calls, ['listTasks', 'listTasks'], 'only the tasks are listed: nodes and services raise events');
  await stop();
});

test('the rare full relist lists nodes, services and tasks, and announces a service that vanished without an event as removed', async () => {
  const { swarm, changes, tick, stop } = await periodic({ relistEveryMs: 600_000 });
  swarm.services = swarm.services.filter((s) => s.name !== 'qa-2_api'); // removed, its event lost
  swarm.calls = [];
  assert.equal(await tick(3), 660_000);
  assert.deepEqual([...swarm.calls].sort(), ['listNodes', 'listServices', 'listTasks']);
  assert.deepEqual(changes, [{ type: 'service', action: 'remove', env: 'qa-2' }]);
  await stop();
});

test('a second run (a new term of leadership) lists again before serving reads: what changed in between is seen', async () => {
  const { swarm, cache, stop } = await started();
  await stop();
  swarm.scaleByHand('qa-1_api', 5); // changed by another leader while this process did not follow events
  const again = new AbortController();
  const running = cache.run(again.signal);
  assert.equal(cache.isSynced(), false, 'unsynced until the new list is in');
  const [svc] = await cache.listServices('qa-1');
  assert.equal(svc!.replicas, 5);
  again.abort();
  await running;
});

test("a job run's task is held across relists (their list leaves it out) and listed again until it ended", async () => {
  const now = { t: 0 };
  const { swarm, cache, stop } = await started({ now: () => now.t });
  const run = await swarm.createService({ Name: 'qa-1_report_1', Labels: { [LABEL_ENV]: 'qa-1', [LABEL_JOB]: 'report' }, Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } }, TaskTemplate: { ContainerSpec: { Image: 'web:v1' } } });
  swarm.jobTaskStates.set('qa-1_report_1', 'running');
  await cache.relist();
  assert.deepEqual((await cache.listTasks([run])).map((t) => t.state), ['running'], 'listed on its first read');
  swarm.jobTaskStates.set('qa-1_report_1', 'complete');
  now.t += 1_000;
  await cache.relist();
  assert.deepEqual((await cache.listTasks([run])).map((t) => t.state), ['complete'], 'a going run is listed again: its end raises no event');
  swarm.calls = [];
  now.t += 5_000;
  await cache.relist();
  assert.deepEqual((await cache.listTasks([run])).map((t) => t.state), ['complete'], 'the relist kept the ended task');
  assert.deepEqual(swarm.calls.filter((c) => c === 'listTasks'), ['listTasks'], 'only the relist listed tasks: an ended run has settled');
  await stop();
});

test("the event of the cache's own write, read back since, costs no call; the next change still does", async () => {
  let now = 0;
  const { swarm, cache, changes, api, stop } = await started({ now: () => now });
  const version = (await cache.inspectService(api))!.version;
  await cache.scaleService(api, version, 3);
  assert.equal((await cache.listServices('qa-1'))[0]!.replicas, 3, 'the write is read back');
  assert.deepEqual(swarm.calls, ['scaleService', 'inspectService']);
  swarm.calls = [];
  swarm.emitEvent({ type: 'service', action: 'update', id: api, attributes: { name: 'qa-1_api' } });
  assert.deepEqual(changes.map((c) => c.env), ['qa-1'], 'its environment is still told');
  await cache.listServices('qa-1');
  assert.deepEqual(swarm.calls, [], 'the echo is not read again');

  now += 100;
  swarm.scaleByHand('qa-1_api', 4);
  swarm.emitEvent({ type: 'service', action: 'update', id: api, attributes: { name: 'qa-1_api' } });
  assert.equal((await cache.listServices('qa-1'))[0]!.replicas, 4);
  assert.deepEqual(swarm.calls, ['inspectService']);
  await stop();
});

test('an event while a write is on its way, or after an echo that never came, is read again', async () => {
  let now = 0;
  const { swarm, cache, api, stop } = await started({ now: () => now });
  const node = (await cache.listNodes()).find((n) => n.labels[LABEL_ENV] === 'qa-1')!;
  // The event arrives before the write returns: it may be the echo or another change.
  const writing = cache.updateNodeLabels(node.id, node.version, { ...node.labels, team: 'a' });
  swarm.emitEvent({ type: 'node', action: 'update', id: node.id, attributes: {} });
  await writing;
  await cache.nodeIndex();
  swarm.calls = [];
  swarm.emitEvent({ type: 'node', action: 'update', id: node.id, attributes: {} });
  await cache.nodeIndex();
  assert.deepEqual(swarm.calls, ['inspectNode'], 'the write expected no echo after that event');

  // A write whose echo does not come within the window: a later event is read again.
  const v = (await cache.inspectService(api))!.version;
  await cache.scaleService(api, v, 5);
  await cache.listServices('qa-1');
  now += 6_000;
  swarm.calls = [];
  swarm.emitEvent({ type: 'service', action: 'update', id: api, attributes: { name: 'qa-1_api' } });
  await cache.listServices('qa-1');
  assert.deepEqual(swarm.calls, ['inspectService']);

  // A failed write raises no event, and expects none.
  swarm.calls = [];
  await assert.rejects(cache.scaleService(api, 1, 6));
  await cache.listServices('qa-1');
  swarm.emitEvent({ type: 'service', action: 'update', id: api, attributes: { name: 'qa-1_api' } });
  await cache.listServices('qa-1');
  assert.deepEqual(swarm.calls, ['scaleService', 'inspectService', 'inspectService']);
  await stop();
});

test("a create's event that comes before the create returns is read once, with the create; another service's event waits for the creates", async () => {
  const { swarm, cache, changes, stop } = await started();
  let answer!: () => void;
  swarm.answered.set('createService', new Promise((r) => (answer = r)));
  const creating = cache.createService(serviceSpec('qa-1', 'web'));
  swarm.answered.clear();
  const id = swarm.services.at(-1)!.id; // Docker raises the event before it answers
  swarm.emitEvent({ type: 'service', action: 'create', id, attributes: { name: 'qa-1_web' } });
  // A service the cache does not hold, created by someone else meanwhile.
  const foreign = await swarm.createService(serviceSpec('qa-2', 'db'));
  swarm.calls = [];
  swarm.emitEvent({ type: 'service', action: 'create', id: foreign, attributes: { name: 'qa-2_db' } });
  await cache.listServices();
  assert.deepEqual(swarm.calls, [], 'nothing is read while the create is on its way');
  answer();
  assert.equal(await creating, id);
  assert.deepEqual((await cache.listServices()).map((s) => s.name).sort(), ['qa-1_api', 'qa-1_web', 'qa-2_api', 'qa-2_db']);
  assert.deepEqual(swarm.calls, ['listServicesById'], 'both read once, together');
  assert.deepEqual(changes.map((c) => c.env), ['qa-1', 'qa-2'], 'both environments are told at once');
  await stop();
});

/** A cache over qa-1_api and qa-2_api, plus eight services of qa-3 (ids up to svc10: `svc1` is a prefix of `svc10`). */
async function startedWithTen() {
  const s = await started();
  for (let i = 0; i < 8; i++) await s.swarm.createService(serviceSpec('qa-3', `w${i}`, 1));
  await s.cache.relist();
  s.swarm.calls = [];
  return s;
}

const serviceEvent = (swarm: FakeSwarm, id: string, action = 'update') => swarm.emitEvent({ type: 'service', action, id, attributes: { name: swarm.services.find((s) => s.id === id)?.name ?? 'qa-1_api' } });

test('several dirty services are read with one list call, one with an inspect; a service the answer lacks is gone, and a prefix match is not taken for it', async () => {
  const { swarm, cache, api, stop } = await startedWithTen();
  const other = swarm.services.find((s) => s.name === 'qa-2_api')!.id;
  assert.equal(api, 'svc1');
  swarm.services = swarm.services.filter((s) => s.id !== api); // removed by hand
  swarm.scaleByHand('qa-2_api', 4);
  serviceEvent(swarm, api, 'remove');
  serviceEvent(swarm, other);
  const held = await cache.listServices();
  assert.deepEqual(swarm.calls, ['listServicesById']);
  assert.equal(held.some((s) => s.id === api), false, 'absent from the answer: removed');
  assert.equal(held.find((s) => s.id === other)!.replicas, 4);
  assert.equal(held.find((s) => s.id === 'svc10')!.name, 'qa-3_w7', 'svc10, which the prefix svc1 matched, stays itself');
  assert.equal(held.length, 9);
  assert.deepEqual(await cache.listTasks([api]), [], 'its tasks are dropped with it');

  swarm.calls = [];
  swarm.scaleByHand('qa-2_api', 5);
  serviceEvent(swarm, other);
  assert.equal((await cache.inspectService(other))!.replicas, 5);
  assert.equal((await cache.listServices('qa-2'))[0]!.replicas, 5);
  assert.deepEqual(swarm.calls, ['inspectService'], 'one dirty: one inspect, its mark spent');
  await stop();
});

test('node events that arrive together are read with one list call; a node the answer lacks is gone', async () => {
  const { swarm, cache, changes, stop } = await started();
  swarm.nodes[0]!.availability = 'drain';
  swarm.nodes[0]!.version++;
  swarm.nodes = swarm.nodes.slice(0, 1); // node2 left the Swarm
  for (const id of ['node1', 'node2']) swarm.emitEvent({ type: 'node', action: id === 'node2' ? 'remove' : 'update', id, attributes: {} });
  await waitFor(() => changes.length === 2);
  assert.deepEqual(swarm.calls, ['listNodesById']);
  assert.deepEqual(changes, [
    { type: 'node', action: 'update', env: undefined },
    { type: 'node', action: 'remove', env: undefined },
  ]);
  assert.deepEqual((await cache.listNodes()).map((n) => [n.id, n.availability]), [['node1', 'drain']]);
  assert.deepEqual(swarm.calls, ['listNodesById']);
  await stop();
});

test('a failed list marks every id of its batch dirty again: the next read reads them all', async () => {
  const { swarm, cache, stop } = await startedWithTen();
  const ids = swarm.services.slice(0, 3).map((s) => s.id);
  for (const s of swarm.services.slice(0, 3)) swarm.scaleByHand(s.name, 7);
  for (const id of ids) serviceEvent(swarm, id);
  swarm.failNext('listServicesById');
  await assert.rejects(cache.listServices());
  const held = await cache.listServices();
  assert.deepEqual(swarm.calls, ['listServicesById', 'listServicesById']);
  assert.deepEqual(ids.map((id) => held.find((s) => s.id === id)!.replicas), [7, 7, 7]);
  await stop();
});

test('dirty ids beyond the batch size are read with one list call per batch', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  for (let i = 0; i < 5; i++) await swarm.createService(serviceSpec('qa-1', `w${i}`, 1));
  const cache = new SwarmCache(swarm, { log, idsPerList: 2 });
  const stop = new AbortController();
  const running = cache.run(stop.signal);
  await cache.waitForSync();
  await new Promise((r) => setImmediate(r)); // the event stream is followed
  swarm.calls = [];
  for (const s of swarm.services) serviceEvent(swarm, s.id);
  await cache.listServices();
  assert.deepEqual(swarm.calls, ['listServicesById', 'listServicesById', 'inspectService'], '2 + 2 + 1');
  stop.abort();
  await running;
});

test('a reader that comes while a batch is on its way waits for it and shares it: no call of its own', async () => {
  const { swarm, cache, stop } = await startedWithTen();
  const [a, b] = swarm.services.slice(0, 2);
  swarm.scaleByHand(a!.name, 6);
  swarm.scaleByHand(b!.name, 6);
  serviceEvent(swarm, a!.id);
  serviceEvent(swarm, b!.id);
  let answer!: () => void;
  swarm.answered.set('listServicesById', new Promise((r) => (answer = r)));
  const first = cache.listServices();
  let read: number | undefined;
  const second = cache.inspectService(b!.id).then((s) => (read = s?.replicas));
  await new Promise((r) => setImmediate(r));
  assert.equal(read, undefined, 'the second reader waits for the batch');
  answer();
  await Promise.all([first, second]);
  assert.equal(read, 6);
  assert.deepEqual(swarm.calls, ['listServicesById']);
  await stop();
});
