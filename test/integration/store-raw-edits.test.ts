/**
 * Specs written into etcd directly (etcdctl, confd-era tooling), read back through the store
 * against a real etcd: a raw edit of the spec gets a generation from etcd's revision; a value
 * that is not a resource is reported with the revision of the write.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { InvalidStoredResourceError } from '../../src/api/errors.js';
import type { EtcdClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { TestEtcd, wipe } from '../support/etcd.js';
import { env } from '../support/fixtures.js';

describe('raw writes of stored specs, against a real etcd', () => {
  const etcd = new TestEtcd();
  let client: EtcdClient;
  let store: ResourceStore;
  const key = '/berth-test/environments/qa-1';

  before(async () => {
    await etcd.start();
    client = etcd.client();
    store = new ResourceStore(client);
  });
  after(async () => {
    client?.close();
    await etcd.destroy();
  });
  beforeEach(() => wipe(client));

  it('a raw put that changes the spec takes the generation from the key\'s mod_revision; berth apply counts on from it', async () => {
    await store.apply(env());
    const stored = (await client.etcd.get(key).json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    stored.spec.nodes = 3; // what an operator does with etcdctl get | edit | etcdctl put
    const put = await client.etcd.put(key).value(JSON.stringify(stored)).exec();
    const revision = Number(put.header.revision);

    const read = await store.getStored('Environment', 'qa-1');
    assert.equal(read?.resource.spec.nodes, 3);
    assert.equal(read?.resource.metadata.generation, revision);
    assert.equal(Number(read?.modRevision), revision);
    assert.equal((await store.list('Environment'))[0]?.metadata.generation, revision, 'a list reads the same generation');

    const applied = await store.apply(env('qa-1', { nodes: 5 }));
    assert.equal(applied.resource.metadata.generation, revision + 1);
    assert.equal((await store.get('Environment', 'qa-1'))?.metadata.generation, revision + 1, 'an applied spec keeps its generation');
  });

  it('a raw put that leaves the spec as it was keeps the generation', async () => {
    await store.apply(env());
    const stored = (await client.etcd.get(key).json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    stored.metadata.labels = { touched: 'by-hand' };
    await client.etcd.put(key).value(JSON.stringify(stored)).exec();
    assert.equal((await store.get('Environment', 'qa-1'))?.metadata.generation, 1);
  });

  it('a raw put of something that is not JSON is an error that names the revision of that write', async () => {
    const put = await client.etcd.put(key).value('nodes: 3 <- not json').exec();
    const err = await store.get('Environment', 'qa-1').then(
      () => assert.fail('an invalid value must not read as a resource'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof InvalidStoredResourceError);
    assert.equal(err.revision, put.header.revision);
    assert.match(err.message, /not JSON/);
  });
});
