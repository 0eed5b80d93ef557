/**
 * ResourceStore.applyMany against a real etcd: many resources in a few transactions, with the
 * outcome `apply` gives each one, also when someone writes one of the keys meanwhile.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ConflictError, NotLeaderError } from '../../src/api/errors.js';
import type { Environment } from '../../src/api/index.js';
import type { EtcdClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { TestEtcd, wipe } from '../support/etcd.js';
import { env } from '../support/fixtures.js';

describe('ResourceStore.applyMany against a real etcd', () => {
  const etcd = new TestEtcd();
  let client: EtcdClient;
  let store: ResourceStore;
  /** The operations of the calls the store made (`get 100 keys: …`, `put /berth-test/…`). */
  let calls: string[];

  before(async () => {
    await etcd.start();
    client = etcd.client();
    const call = client.call.bind(client);
    client.call = (operation, fn) => (calls.push(operation), call(operation, fn));
    store = new ResourceStore(client);
  });
  after(async () => {
    client?.close();
    await etcd.destroy();
  });
  beforeEach(async () => {
    await wipe(client);
    calls = [];
  });

  const revision = async () => Number((await client.etcd.get('/berth-test/none').exec()).header.revision);
  const envs = (count: number, opts: Parameters<typeof env>[1] = {}) => Array.from({ length: count }, (_, i) => env(`qa-${i + 1}`, opts));
  const stored = async (name: string) => (await client.etcd.get(`/berth-test/environments/${name}`).json()) as Environment | null;

  it('250 environments: created in 3 reads and 3 writes; again: unchanged in 3 reads, nothing written', async () => {
    const before = await revision();
    const created = await store.applyMany(envs(250));
    assert.deepEqual(new Set(created.map((o) => o.result)), new Set(['created']));
    assert.deepEqual(created.map((o) => o.resource.metadata.name), envs(250).map((e) => e.metadata.name), 'outcomes in input order');
    assert.deepEqual(calls.map((c) => c.split(' ')[0]).sort(), ['get', 'get', 'get', 'put', 'put', 'put']);
    assert.equal((await revision()) - before, 3, 'three transactions wrote');
    const e7 = await stored('qa-7');
    assert.equal(e7?.metadata.generation, 1);
    assert.deepEqual(e7, created[6]!.resource);

    calls = [];
    const again = await store.applyMany(envs(250));
    assert.deepEqual(new Set(again.map((o) => o.result)), new Set(['unchanged']));
    assert.deepEqual(calls.map((c) => c.split(' ')[0]), ['get', 'get', 'get']);
    assert.equal((await revision()) - before, 3);
    assert.deepEqual(await stored('qa-7'), e7, 'an unchanged resource is left as it was');
  });

  it('a changed spec raises the generation, a changed label does not, the rest stay unchanged', async () => {
    await store.applyMany(envs(5));
    const next = envs(5);
    next[1] = env('qa-2', { nodes: 3 });
    next[3] = env('qa-4', { labels: { team: 'api' } });
    const out = await store.applyMany(next);
    assert.deepEqual(out.map((o) => [o.result, o.resource.metadata.generation]), [
      ['unchanged', 1],
      ['configured', 2],
      ['unchanged', 1],
      ['configured', 1],
      ['unchanged', 1],
    ]);
    assert.equal((await stored('qa-2'))?.spec.nodes, 3);
    assert.equal((await stored('qa-4'))?.metadata.labels?.team, 'api');
  });

  it('dry run reports what would happen and writes nothing', async () => {
    await store.applyMany(envs(2));
    const before = await revision();
    calls = [];
    const out = await store.applyMany([env('qa-1'), env('qa-2', { nodes: 4 }), env('qa-3')], { dryRun: true });
    assert.deepEqual(out.map((o) => o.result), ['unchanged', 'configured', 'created']);
    assert.deepEqual(calls.map((c) => c.split(' ')[0]), ['get']);
    assert.equal(await revision(), before);
    assert.equal(await stored('qa-3'), null);
  });

  it('a resource named twice: in input order, the last one wins', async () => {
    const out = await store.applyMany([env('qa-1'), env('qa-2'), env('qa-1', { nodes: 5 }), env('qa-1', { nodes: 5 })]);
    assert.deepEqual(out.map((o) => [o.result, o.resource.metadata.generation]), [
      ['created', 1],
      ['created', 1],
      ['configured', 2],
      ['unchanged', 2],
    ]);
    assert.equal((await stored('qa-1'))?.spec.nodes, 5);
  });

  it('a key written between the read and the write: its chunk is applied one by one, and both writes count', async () => {
    await store.applyMany(envs(3));
    const call = client.call;
    let raced = false;
    client.call = async (operation, fn) => {
      if (!raced && operation.startsWith('put ')) {
        raced = true;
        const other = etcd.client(); // another berth apply, meanwhile
        await new ResourceStore(other).apply(env('qa-2', { nodes: 7 })).finally(() => other.close());
      }
      return call(operation, fn);
    };
    try {
      const out = await store.applyMany([env('qa-1', { nodes: 2 }), env('qa-2', { nodes: 3 }), env('qa-3'), env('qa-4')]);
      assert.ok(raced);
      assert.deepEqual(out.map((o) => [o.result, o.resource.metadata.generation]), [
        ['configured', 2],
        ['configured', 3],
        ['unchanged', 1],
        ['created', 1],
      ]);
      assert.deepEqual(calls.filter((c) => c.startsWith('get /berth-test/')).sort(), ['get /berth-test/environments/qa-1', 'get /berth-test/environments/qa-2', 'get /berth-test/environments/qa-4']);
      assert.equal((await stored('qa-2'))?.spec.nodes, 3, 'applied over the concurrent write');
      assert.equal((await stored('qa-2'))?.metadata.generation, 3, 'the concurrent change counted too');
      assert.equal((await stored('qa-4'))?.metadata.generation, 1);
    } finally {
      client.call = call;
    }
  });

  it('resources too big for one transaction together are split by bytes', async () => {
    // 100 environments of ~20 KB each: 2 MB, over etcd's 1.5 MiB request limit.
    const annotations = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`note-${i}`, 'x'.repeat(4000)]));
    const big = envs(100).map((e) => ({ ...e, metadata: { ...e.metadata, annotations } }));
    const out = await store.applyMany(big);
    assert.deepEqual(new Set(out.map((o) => o.result)), new Set(['created']));
    assert.ok(calls.filter((c) => c.startsWith('put ')).length >= 2);
    assert.equal((await stored('qa-100'))?.metadata.annotations?.['note-4']?.length, 4000);
  });

  it('a resource being deleted fails alone: the others are applied, then the apply rejects', async () => {
    await store.applyMany(envs(3));
    await store.markDeleted('qa-2');
    await assert.rejects(store.applyMany([env('qa-1', { nodes: 2 }), env('qa-2', { nodes: 2 }), env('qa-2', { nodes: 3 }), env('qa-3', { nodes: 2 })]), (err: unknown) => {
      assert.ok(err instanceof ConflictError);
      assert.match(err.message, /"qa-2" is being deleted/);
      return true;
    });
    assert.equal((await stored('qa-1'))?.spec.nodes, 2);
    assert.equal((await stored('qa-2'))?.spec.nodes, 1);
    assert.equal((await stored('qa-3'))?.spec.nodes, 2);
  });

  it('through a fenced client: 150 resources in chunks under etcd\'s 128 operations; a lost fence writes nothing', async () => {
    const leaderKey = '/berth-test/leader';
    await client.etcd.put(leaderKey).value('me').exec();
    let token = { key: leaderKey, createRevision: (await client.etcd.get(leaderKey).exec()).kvs[0]!.create_revision };
    const lost: Error[] = [];
    const fenced = new ResourceStore(client.fenced({ token: () => token, lost: (err) => lost.push(err) }));
    const out = await fenced.applyMany(envs(150));
    assert.equal(out.filter((o) => o.result === 'created').length, 150);

    token = { key: leaderKey, createRevision: '1' }; // another term's
    const before = await revision();
    await assert.rejects(fenced.applyMany([env('qa-1', { nodes: 9 }), env('qa-151')]), NotLeaderError);
    assert.equal(await revision(), before);
    assert.equal(lost.length, 1);
  });
});
