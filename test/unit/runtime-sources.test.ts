import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allKeys } from '../../src/controller/list-keys.js';
import { etcdSource } from '../../src/controller/source-etcd.js';
import { swarmCacheSource } from '../../src/controller/source-swarm.js';
import { SwarmCache } from '../../src/swarm/cache.js';
import { periodicSource, type Source } from '../../src/runtime/source.js';
import { LABEL_ENV, LABEL_INSTALLATION } from '../../src/swarm/labels.js';
import { FakeClock } from '../support/fake-clock.js';
import { RecordingQueue, settle, silentLog } from '../support/fake-runtime.js';
import { FakeStore } from '../support/fake-store.js';
import { fakeNode, FakeSwarm } from '../support/fake-swarm.js';
import { FakeResourceWatch } from '../support/fake-watch.js';
import { env, group } from '../support/fixtures.js';

/** Runs `source` into a recording queue until stop(). */
function running(source: Source) {
  const queue = new RecordingQueue();
  const abort = new AbortController();
  let synced = 0;
  const done = source.run(queue, abort.signal, () => synced++);
  return {
    queue,
    synced: () => synced,
    stop: async () => {
      abort.abort();
      await done;
    },
  };
}

function swarmWorld() {
  const store = new FakeStore();
  store.envs.set('qa-1', env('qa-1'));
  store.groups.set('qa-pool', group('qa-pool'));
  const swarm = new FakeSwarm([fakeNode(1, { labels: { [LABEL_ENV]: 'qa-2' } }), fakeNode(2)]); // qa-2: deleted, still holds a node
  const cache = new SwarmCache(swarm, { log: silentLog });
  const source = swarmCacheSource({ cache, listKeys: () => allKeys(store, store, cache, 'inst-a'), log: silentLog });
  return { swarm, source };
}

test('Docker events: service, task and container events enqueue their environment', async () => {
  const { swarm, source } = swarmWorld();
  const r = running(source);
  await settle();
  assert.equal(r.synced(), 1, 'synced once the cache holds its first list');
  swarm.emitEvent({ type: 'service', action: 'update', id: 's1', attributes: { name: 'qa-1_api_blue' } });
  swarm.emitEvent({ type: 'task', action: 'update', id: 't1', attributes: { name: 'qa-3_web' } });
  swarm.emitEvent({ type: 'container', action: 'die', id: 'c1', attributes: { [LABEL_ENV]: 'qa-4', name: 'x' } });
  swarm.emitEvent({ type: 'service', action: 'create', id: 's2', attributes: { name: 'traefik' } }); // not berth's
  swarm.emitEvent({ type: 'container', action: 'die', id: 'c2', attributes: { name: 'other' } });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-1', 'env/qa-3', 'env/qa-4']);
  await r.stop();
});

test('Docker events: a node change other than a claim enqueues every key, including environments that only own Swarm objects', async () => {
  const { swarm, source } = swarmWorld();
  const r = running(source);
  await settle();
  swarm.nodes.find((n) => n.id === 'node2')!.availability = 'drain';
  swarm.emitEvent({ type: 'node', action: 'update', id: 'node2', attributes: {} });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-1', 'env/qa-2', 'group/qa-pool']);
  await r.stop();
});

test('Docker events: a node whose claim moved (with its installation label) enqueues only the environment that lost it and the one that took it', async () => {
  const { swarm, source } = swarmWorld();
  const r = running(source);
  await settle();
  const node = swarm.nodes.find((n) => n.id === 'node1')!;
  node.labels = { ...node.labels, [LABEL_ENV]: 'qa-3' };
  node.version++;
  swarm.emitEvent({ type: 'node', action: 'update', id: 'node1', attributes: {} });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-2', 'env/qa-3']);
  // A claim also stamps the installation (every claim of a cold start: fanning each out to every key was N²).
  const free = swarm.nodes.find((n) => n.id === 'node2')!;
  free.labels = { ...free.labels, [LABEL_ENV]: 'qa-4', [LABEL_INSTALLATION]: 'inst-a' };
  free.version++;
  swarm.emitEvent({ type: 'node', action: 'update', id: 'node2', attributes: {} });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-4']);
  await r.stop();
});

test('Docker events: after a reconnect everything is listed again', async () => {
  const { swarm, source } = swarmWorld();
  const r = running(source);
  await settle();
  assert.deepEqual(r.queue.take(), []);
  swarm.reconnectEvents();
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-1', 'env/qa-2', 'group/qa-pool']);
  await r.stop();
});

test('etcd: the relist enqueues everything and marks the source synced; a deletion seen only in a relist is enqueued', async () => {
  const watch = new FakeResourceWatch();
  let restarts = 0;
  const r = running(etcdSource({ watch: watch.open, log: silentLog, onRestart: () => restarts++ }));
  watch.push({ type: 'relist', kind: 'all', revision: '5', items: [group('pool-a'), env('qa-1', { group: 'pool-a' }), env('qa-2', { group: 'pool-b' })] });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-1', 'env/qa-2', 'group/pool-a']);
  assert.equal(r.synced(), 1);
  watch.push({ type: 'relist', kind: 'all', revision: '9', items: [env('qa-1', { group: 'pool-a' })] });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-1', 'env/qa-2'], 'qa-2 vanished while the watch was down: its key runs to clean up');
  watch.opts.onRestart?.('compacted', new Error('compacted'));
  assert.equal(restarts, 1);
  await r.stop();
  assert.equal(watch.closed, true, 'stopping closes the watch');
});

test('etcd: an environment event enqueues that environment; a group event the group and its environments', async () => {
  const watch = new FakeResourceWatch();
  const r = running(etcdSource({ watch: watch.open, log: silentLog, onRestart: () => {} }));
  watch.push({ type: 'relist', kind: 'all', revision: '5', items: [group('pool-a'), group('pool-b'), env('qa-1', { group: 'pool-a' }), env('qa-2', { group: 'pool-b' })] });
  await settle();
  r.queue.take();
  watch.push({ type: 'put', kind: 'Environment', name: 'qa-3', resource: env('qa-3', { group: 'pool-a' }), revision: '6' });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-3']);
  watch.push({ type: 'put', kind: 'EnvironmentGroup', name: 'pool-a', resource: group('pool-a', 1), revision: '7' });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-1', 'env/qa-3', 'group/pool-a'], 'the group and both its environments, not qa-2');
  watch.push({ type: 'delete', kind: 'Environment', name: 'qa-1', revision: '8' });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-1']);
  watch.push({ type: 'delete', kind: 'EnvironmentGroup', name: 'pool-a', revision: '9' });
  await settle();
  assert.deepEqual(r.queue.take(), ['env/qa-3', 'group/pool-a'], 'a deleted environment is no longer in its group');
  watch.opts.onInvalid?.('/berth/environments/qa-9', new Error('bad spec'));
  watch.opts.onInvalid?.('/berth/groups/pool-z', new Error('bad spec'));
  assert.deepEqual(r.queue.take(), ['env/qa-9'], "an invalid environment's own reconcile reports it");
  await r.stop();
});

test('periodic: lists at once and every interval on the clock; a failed list is retried next round', async () => {
  const clock = new FakeClock();
  let lists = 0;
  let failing = true;
  const r = running(
    periodicSource({
      name: 'resync',
      intervalMs: 30_000,
      clock,
      log: silentLog,
      list: async () => {
        lists++;
        if (failing) throw new Error('etcd down');
        return ['env/a', 'group/g'];
      },
    }),
  );
  await settle();
  assert.equal(lists, 1);
  assert.equal(r.synced(), 0, 'a failed list does not mark the source synced');
  failing = false;
  clock.advance(29_999);
  await settle();
  assert.equal(lists, 1);
  clock.advance(1);
  await settle();
  assert.equal(lists, 2);
  assert.deepEqual(r.queue.take(), ['env/a', 'group/g']);
  assert.equal(r.synced(), 1);
  await r.stop();
  assert.equal(clock.pendingTimers, 0, 'stopping cancels the wait');
});

test('periodic: with a spread, each key of a round comes at its own random delay within the spread', async () => {
  const clock = new FakeClock();
  const randoms = [0, 0.5, 0.999];
  const r = running(
    periodicSource({
      name: 'resync',
      intervalMs: 30_000,
      spreadMs: 3_000,
      random: () => randoms.shift()!,
      clock,
      log: silentLog,
      list: async () => ['env/a', 'env/b', 'group/g'],
    }),
  );
  await settle();
  assert.deepEqual([...r.queue.delays], [
    ['env/a', 0],
    ['env/b', 1_500],
    ['group/g', 2_997],
  ]);
  await r.stop();
});
