import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ResourceStore, GroupInUseError } from '../../src/store/resources.js';
import { StatusStore } from '../../src/store/status.js';
import type { EtcdClient } from '../../src/store/client.js';
import { TestEtcd, wipe } from '../support/etcd.js';
import { env, group } from '../support/fixtures.js';

describe('ResourceStore against a real etcd', () => {
  const etcd = new TestEtcd();
  let client: EtcdClient;
  let store: ResourceStore;

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

  it('creates with generation 1 and a creationTimestamp, ignoring what the user wrote', async () => {
    const g = group();
    g.metadata.generation = 7;
    g.metadata.creationTimestamp = '1999-01-01T00:00:00Z';
    const out = await store.apply(g);
    assert.equal(out.result, 'created');
    assert.equal(out.resource.metadata.generation, 1);
    assert.notEqual(out.resource.metadata.creationTimestamp, '1999-01-01T00:00:00Z');
    const raw = await client.etcd.get('/berth-test/groups/qa-pool').json();
    assert.deepEqual(raw, out.resource);
    assert.deepEqual(await store.get('EnvironmentGroup', 'qa-pool'), out.resource);
  });

  it('re-applying the same resource is unchanged and keeps the generation', async () => {
    const first = await store.apply(env());
    const again = await store.apply(env());
    assert.equal(again.result, 'unchanged');
    assert.equal(again.resource.metadata.generation, 1);
    assert.equal(again.resource.metadata.creationTimestamp, first.resource.metadata.creationTimestamp);
  });

  it('an edited spec is configured with generation + 1; a label change keeps the generation', async () => {
    await store.apply(env());
    const edited = await store.apply(env('qa-1', { image: 'registry:5000/web:v2' }));
    assert.equal(edited.result, 'configured');
    assert.equal(edited.resource.metadata.generation, 2);
    const relabelled = await store.apply(env('qa-1', { image: 'registry:5000/web:v2', labels: { team: 'api' } }));
    assert.equal(relabelled.result, 'configured');
    assert.equal(relabelled.resource.metadata.generation, 2);
    assert.equal((await store.get('Environment', 'qa-1'))?.metadata.labels?.team, 'api');
  });

  it('dry run reports the result and writes nothing', async () => {
    const out = await store.apply(env(), { dryRun: true });
    assert.equal(out.result, 'created');
    assert.equal(await store.get('Environment', 'qa-1'), undefined);
  });

  it('20 concurrent applies with different specs lose none: generation counts every change', async () => {
    await store.apply(env('qa-1', { nodes: 0 }));
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.apply(env('qa-1', { nodes: i + 1 }))));
    assert.ok(results.every((r) => r.result === 'configured'));
    const generations = results.map((r) => r.resource.metadata.generation).sort((a, b) => (a ?? 0) - (b ?? 0));
    assert.deepEqual(generations, Array.from({ length: 20 }, (_, i) => i + 2));
    const final = await store.get('Environment', 'qa-1');
    assert.equal(final?.metadata.generation, 21);
  });

  it('update (scale) is a CAS write raising the generation', async () => {
    await store.apply(env());
    const out = await store.update('Environment', 'qa-1', (e) => ({ ...e, spec: { ...e.spec, nodes: 3 } }));
    assert.equal(out?.result, 'configured');
    assert.equal(out?.resource.metadata.generation, 2);
    assert.equal((await store.get('Environment', 'qa-1'))?.spec.nodes, 3);
    assert.equal(await store.update('Environment', 'nope', (e) => e), undefined);
  });

  it('lists sorted by name and deletes, reporting whether the resource existed', async () => {
    await store.apply(env('qa-2'));
    await store.apply(env('qa-1'));
    assert.deepEqual((await store.list('Environment')).map((e) => e.metadata.name), ['qa-1', 'qa-2']);
    assert.equal(await store.delete('Environment', 'qa-1'), true);
    assert.equal(await store.delete('Environment', 'qa-1'), false);
    assert.deepEqual((await store.list('Environment')).map((e) => e.metadata.name), ['qa-2']);
  });

  it('refuses to delete a group that environments use, unless forced', async () => {
    await store.apply(group());
    await store.apply(env('qa-1'));
    await assert.rejects(store.delete('EnvironmentGroup', 'qa-pool'), (err: unknown) => err instanceof GroupInUseError && /qa-1/.test(err.message));
    assert.ok(await store.get('EnvironmentGroup', 'qa-pool'));
    assert.equal(await store.delete('EnvironmentGroup', 'qa-pool', { force: true }), true);
  });

  it('status lives beside the resource and survives its deletion', async () => {
    const statuses = new StatusStore(client);
    await store.apply(env());
    const status = { observedGeneration: 1, phase: 'Ready' as const, conditions: [], nodes: [], services: {}, updatedAt: new Date().toISOString() };
    await statuses.putStatus('Environment', 'qa-1', status);
    assert.deepEqual(await statuses.getStatus('Environment', 'qa-1'), status);
    await store.delete('Environment', 'qa-1');
    assert.deepEqual((await statuses.listStatuses('Environment')).get('qa-1'), status);
    assert.equal(await statuses.deleteStatus('Environment', 'qa-1'), true);
    assert.equal(await statuses.getStatus('Environment', 'qa-1'), undefined);
  });
});
