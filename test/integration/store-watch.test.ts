import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createClient, type EtcdClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { etcdRange } from '../../src/store/etcd-range.js';
import { resourcesSpan } from '../../src/store/keys.js';
import { watchResources, type ResourceWatch, type WatchEvent } from '../../src/store/watch.js';
import { TestEtcd, wipe } from '../support/etcd.js';
import { env, group } from '../support/fixtures.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const PREFIX = '/berth-watch';

/** Reads events until `done` says the collected list is complete. */
async function collect(w: ResourceWatch, done: (events: WatchEvent[]) => boolean): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  while (!done(events)) {
    const next = await w.next();
    if (next.done) break;
    events.push(next.value);
  }
  return events;
}

const nodesOf = (e: WatchEvent) => (e.type === 'put' && e.resource.kind === 'Environment' ? e.resource.spec.nodes : undefined);

describe('watchResources against a real etcd', () => {
  const etcd = new TestEtcd();
  const proxy = new TcpProxy(23791, etcd.clientPort);
  let writer: EtcdClient;
  let store: ResourceStore;

  before(async () => {
    await etcd.start();
    await proxy.resume();
    writer = etcd.client(PREFIX);
    store = new ResourceStore(writer);
  });
  after(async () => {
    writer?.close();
    await proxy.cut();
    await etcd.destroy();
  });
  beforeEach(async () => {
    await proxy.resume();
    await wipe(writer);
  });

  it('a stored value that is not a valid resource is reported and skipped, in a relist as in an event', async () => {
    await store.apply(group());
    await writer.etcd.put(`${PREFIX}/environments/broken`).value('{"kind":"Environment"}').exec();
    const reader = createClient({ endpoints: [etcd.endpoint], prefix: PREFIX });
    const invalid: string[] = [];
    const w = watchResources(reader, 'all', undefined, { onInvalid: (key) => invalid.push(key) });
    try {
      const [relist] = await collect(w, (e) => e.length === 1);
      assert.equal(relist?.type, 'relist');
      assert.deepEqual(relist?.type === 'relist' && relist.items.map((r) => r.metadata.name), ['qa-pool']);
      assert.deepEqual(invalid, [`${PREFIX}/environments/broken`]);
      await writer.etcd.put(`${PREFIX}/environments/broken2`).value('not json').exec();
      await store.apply(env('qa-1'));
      const [next] = await collect(w, (e) => e.length === 1);
      assert.equal(next?.type === 'put' && next.name, 'qa-1');
      assert.deepEqual(invalid, [`${PREFIX}/environments/broken`, `${PREFIX}/environments/broken2`]);
    } finally {
      await w.close();
      reader.close();
    }
  });

  it('the watch of every group and environment is not sent the status and route keys written under the same prefix', async () => {
    const reader = createClient({ endpoints: [etcd.endpoint], prefix: PREFIX });
    const keys: string[] = [];
    let connected!: () => void;
    const ready = new Promise<void>((r) => (connected = r));
    const from = String(BigInt((await writer.etcd.get(`${PREFIX}/none`).exec()).header.revision) + 1n);
    const stream = etcdRange(reader).watch(resourcesSpan(PREFIX), from, {
      connected: () => connected(),
      changes: (batch) => keys.push(...batch.map((c) => c.key)),
      broken: () => undefined,
      canceled: () => undefined,
    });
    try {
      await ready;
      for (const key of ['environments/qa-1', 'status/environments/qa-1', 'routes/qa-1_web/owner', 'leader/x', 'groups/qa-pool', 'installation']) {
        await writer.etcd.put(`${PREFIX}/${key}`).value('{}').exec();
      }
      await writer.etcd.put(`${PREFIX}/groups/zz-last`).value('{}').exec();
      for (let i = 0; i < 100 && !keys.includes(`${PREFIX}/groups/zz-last`); i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(keys, [`${PREFIX}/environments/qa-1`, `${PREFIX}/groups/qa-pool`, `${PREFIX}/groups/zz-last`]);
    } finally {
      await stream.cancel();
      reader.close();
    }
  });

  it('starts with a relist, then delivers puts and deletes in order with revisions', async () => {
    await store.apply(group());
    const reader = createClient({ endpoints: [etcd.endpoint], prefix: PREFIX });
    const w = watchResources(reader, 'all');
    try {
      const [relist] = await collect(w, (e) => e.length === 1);
      assert.equal(relist?.type, 'relist');
      assert.deepEqual(relist?.type === 'relist' && relist.items.map((r) => r.metadata.name), ['qa-pool']);
      await store.apply(env('qa-1'));
      await writer.etcd.put(`${PREFIX}/status/environments/qa-1`).value('{}').exec(); // not a resource: filtered
      await store.apply(env('qa-1', { nodes: 2 }));
      await store.delete('Environment', 'qa-1');
      const events = await collect(w, (e) => e.length === 3);
      assert.deepEqual(events.map((e) => e.type), ['put', 'put', 'delete']);
      assert.deepEqual(events.map(nodesOf), [1, 2, undefined]);
      const revs = events.map((e) => BigInt(e.revision));
      assert.ok(revs[0]! < revs[1]! && revs[1]! < revs[2]!);
    } finally {
      await w.close();
      reader.close();
    }
  });

  it('a value written raw (etcdctl: no spec hash) comes with the generation a store read gives it, listed and in an event', async () => {
    await writer.etcd.put(`${PREFIX}/environments/qa-raw`).value(JSON.stringify(env('qa-raw'))).exec();
    await store.apply(group()); // a later write: the list's revision is not the raw value's
    const reader = createClient({ endpoints: [etcd.endpoint], prefix: PREFIX });
    const w = watchResources(reader, 'Environment');
    try {
      const [relist] = await collect(w, (e) => e.length === 1);
      const listed = relist?.type === 'relist' ? relist.items[0] : undefined;
      assert.equal(listed?.metadata.generation, (await store.get('Environment', 'qa-raw'))?.metadata.generation);
      await writer.etcd.put(`${PREFIX}/environments/qa-raw`).value(JSON.stringify(env('qa-raw', { nodes: 2 }))).exec();
      const [next] = await collect(w, (e) => e.length === 1);
      const generation = next?.type === 'put' ? next.resource.metadata.generation : undefined;
      assert.equal(generation, (await store.get('Environment', 'qa-raw'))?.metadata.generation);
      assert.ok(generation! > listed!.metadata.generation!, 'the edit raised it');
    } finally {
      await w.close();
      reader.close();
    }
  });

  it('resumes after its connection is cut and sees every change made meanwhile, in order', async () => {
    await store.apply(env('qa-1', { nodes: 0 }));
    const reader = createClient({ endpoints: [proxy.endpoint], prefix: PREFIX });
    const restarts: string[] = [];
    const w = watchResources(reader, 'Environment', undefined, { onRestart: (r) => restarts.push(r) });
    try {
      await collect(w, (e) => e.length === 1); // relist
      await store.apply(env('qa-1', { nodes: 1 }));
      const [first] = await collect(w, (e) => e.length === 1);
      assert.equal(nodesOf(first!), 1);
      await proxy.cut();
      const N = 10;
      for (let i = 2; i < 2 + N; i++) await store.apply(env('qa-1', { nodes: i }));
      await proxy.resume();
      const events = await collect(w, (e) => e.length === N);
      assert.deepEqual(events.map(nodesOf), Array.from({ length: N }, (_, i) => i + 2));
      assert.ok(restarts.includes('disconnected'));
    } finally {
      await w.close();
      reader.close();
    }
  });

  it('resumes across an etcd restart', async () => {
    await store.apply(env('qa-1', { nodes: 0 }));
    const reader = createClient({ endpoints: [etcd.endpoint], prefix: PREFIX });
    const w = watchResources(reader, 'Environment');
    try {
      await collect(w, (e) => e.length === 1);
      await etcd.stop();
      await etcd.start();
      const N = 5;
      for (let i = 1; i <= N; i++) await store.apply(env('qa-1', { nodes: i }));
      const events = await collect(w, (e) => e.length === N || e.some((x) => x.type === 'relist'));
      const last = events.at(-1)!;
      if (last.type === 'relist') {
        assert.equal(last.items[0]?.kind === 'Environment' && last.items[0].spec.nodes, N);
      } else {
        assert.deepEqual(events.map(nodesOf), [1, 2, 3, 4, 5]);
      }
    } finally {
      await w.close();
      reader.close();
    }
  });

  it('relists when the revision to resume from was compacted, carrying the final state; what vanished gets a delete', async () => {
    await store.apply(env('qa-1'));
    await store.apply(env('qa-2'));
    const reader = createClient({ endpoints: [proxy.endpoint], prefix: PREFIX });
    const restarts: string[] = [];
    const w = watchResources(reader, 'Environment', undefined, { onRestart: (r) => restarts.push(r) });
    try {
      await collect(w, (e) => e.length === 1);
      await proxy.cut();
      await store.delete('Environment', 'qa-1');
      await store.apply(env('qa-2', { nodes: 4 }));
      await store.apply(env('qa-3'));
      const rev = (await writer.etcd.get(`${PREFIX}/x`).exec()).header.revision;
      await writer.etcd.kv.compact({ revision: rev, physical: true });
      await proxy.resume();
      const events = await collect(w, (e) => e.at(-1)?.type === 'relist');
      assert.deepEqual(events.map((e) => `${e.type} ${e.type === 'relist' ? '' : e.name}`), ['delete qa-1', 'relist ']);
      const relist = events.at(-1);
      if (relist?.type !== 'relist') return;
      assert.deepEqual(relist.items.map((r) => r.metadata.name), ['qa-2', 'qa-3']);
      assert.equal(relist.items[0]?.kind === 'Environment' && relist.items[0].spec.nodes, 4);
      assert.ok(restarts.includes('compacted'));
      await store.apply(env('qa-3', { nodes: 9 }));
      const [after] = await collect(w, (e) => e.length === 1);
      assert.equal(nodesOf(after!), 9);
    } finally {
      await w.close();
      reader.close();
    }
  });

  it('starts from a given revision', async () => {
    const rev = (await writer.etcd.get(`${PREFIX}/x`).exec()).header.revision;
    await store.apply(env('qa-1'));
    await store.apply(env('qa-1', { nodes: 3 }));
    const reader = createClient({ endpoints: [etcd.endpoint], prefix: PREFIX });
    const w = watchResources(reader, 'Environment', (BigInt(rev) + 1n).toString());
    try {
      const events = await collect(w, (e) => e.length === 2);
      assert.deepEqual(events.map(nodesOf), [1, 3]);
    } finally {
      await w.close();
      reader.close();
    }
  });
});
