import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resource } from '../../src/api/resource.js';
import { listWatch } from '../../src/store/listwatch.js';
import { planApply } from '../../src/store/resources.js';
import { resourceDecoder } from '../../src/store/watch.js';
import { FakeKeyRange } from '../support/fake-key-range.js';
import { env } from '../support/fixtures.js';

const settle = () => new Promise((r) => setImmediate(r));

/**
 * What the etcd watch delivers is what a read of the store gives (withStoredGeneration): the
 * controller's resource informer holds it and its reconciles act on it instead of a read.
 */
test('resource watch: a value written raw (no spec hash, as etcdctl does) comes with its mod revision as generation, in a list and in an event; an applied one keeps its own', async (t) => {
  const range = new FakeKeyRange();
  const { resource: applied } = planApply(undefined, env('qa-applied'), new Date(0));
  range.put('/b/environments/qa-applied', JSON.stringify(applied));
  range.put('/b/environments/qa-raw', JSON.stringify(env('qa-raw')));
  const rawWritten = range.revision;
  range.put('/b/groups/unrelated', 'not a resource this test reads');
  const held = new Map<string, Resource>();
  const w = listWatch(range, {
    prefix: '/b/',
    decoder: resourceDecoder('/b', 'Environment'),
    deliver: (d) => {
      for (const c of d.changes) if (c.type === 'put') held.set(c.object.metadata.name, c.object);
    },
  });
  t.after(() => w.close());
  await settle();
  assert.equal(held.get('qa-applied')?.metadata.generation, 1, 'applied: the generation berth counted');
  assert.equal(held.get('qa-raw')?.metadata.generation, Number(rawWritten), 'raw, listed: the revision of its write, not the list');
  range.put('/b/environments/qa-raw', JSON.stringify(env('qa-raw', { nodes: 2 })));
  await settle();
  assert.equal(held.get('qa-raw')?.metadata.generation, Number(range.revision), 'raw, edited: a new generation, so the spec change is not taken for the one observed before');
});
