import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResourceInformer } from '../../src/controller/resource-informer.js';
import { FakeStore } from '../support/fake-store.js';
import { env, group } from '../support/fixtures.js';

/** A store that counts reads, behind an informer that has listed what the store holds. */
function listed() {
  const store = new FakeStore();
  store.envs.set('qa-1', env('qa-1', { image: 'web:v1' }));
  store.groups.set('qa-pool', group('qa-pool'));
  const reads: string[] = [];
  const counting = Object.assign(Object.create(store) as FakeStore, {
    getEnvironment: (name: string) => (reads.push(`env/${name}`), store.getEnvironment(name)),
    getGroup: (name: string) => (reads.push(`group/${name}`), store.getGroup(name)),
  });
  const informer = new ResourceInformer(counting);
  return { store, reads, informer };
}

test('resource informer: reads are answered from what the watch delivered, without etcd, frozen', async () => {
  const { store, reads, informer } = listed();
  assert.equal((await informer.getEnvironment('qa-1'))!.spec.services.api!.image, 'web:v1', 'before the first list: from etcd');
  assert.deepEqual(reads, ['env/qa-1']);
  informer.replace([...store.envs.values(), ...store.groups.values()].map((r) => structuredClone(r)));
  reads.length = 0;
  const read = (await informer.getEnvironment('qa-1'))!;
  assert.throws(() => (read.spec.services.api!.image = 'changed by a reconcile'), TypeError, 'held as it is: a reader cannot change it');
  informer.put(env('qa-2', { image: 'web:v2' }));
  assert.equal((await informer.getEnvironment('qa-1'))!.spec.services.api!.image, 'web:v1');
  assert.equal((await informer.getEnvironment('qa-2'))!.spec.services.api!.image, 'web:v2');
  assert.equal((await informer.getGroup('qa-pool'))!.metadata.name, 'qa-pool');
  assert.deepEqual(reads, []);
});

test('resource informer: what it does not hold, and an environment this process deleted, are read from etcd', async () => {
  const { store, reads, informer } = listed();
  informer.replace([...store.envs.values(), ...store.groups.values()].map((r) => structuredClone(r)));
  informer.delete('Environment', 'qa-1'); // deleted, or stored invalid: etcd's read says which
  store.invalid.set('qa-1', new Error('invalid spec'));
  await assert.rejects(informer.getEnvironment('qa-1'), /invalid spec/);
  store.invalid.delete('qa-1');
  informer.put(structuredClone(store.envs.get('qa-1')!));
  await informer.markEnvironmentDeleted('qa-1');
  // The watch has not delivered the mark yet: the informer still holds the version before it.
  assert.ok((await informer.getEnvironment('qa-1'))!.metadata.deletionTimestamp, 'the write is seen at once');
  await informer.deleteEnvironment('qa-1');
  assert.equal(await informer.getEnvironment('qa-1'), undefined);
  assert.deepEqual(reads, ['env/qa-1', 'env/qa-1', 'env/qa-1']);
  informer.reset();
  await informer.getGroup('qa-pool');
  assert.deepEqual(reads.at(-1), 'group/qa-pool', 'a new watch: from etcd until it listed');
});
