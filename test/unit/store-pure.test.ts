import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { storeConfig, normalizePrefix } from '../../src/store/client.js';
import { parseResourceKey, resourceKey, statusKey } from '../../src/store/keys.js';
import { ConflictError } from '../../src/api/errors.js';
import { planApply, resourceSpecHash, withStoredGeneration } from '../../src/store/resources.js';
import { env } from '../support/fixtures.js';

describe('store: config and keys', () => {
  it('reads endpoints and prefix from flags over env over defaults', () => {
    assert.deepEqual(storeConfig({}, {}), { endpoints: ['http://127.0.0.1:2379'], prefix: '/berth' });
    assert.deepEqual(storeConfig({}, { BERTH_ETCD_ENDPOINTS: 'http://a:1, b:2', BERTH_PREFIX: 'x/' }), { endpoints: ['http://a:1', 'http://b:2'], prefix: '/x' });
    assert.deepEqual(storeConfig({ etcdEndpoints: 'http://c:3', prefix: '/p' }, { BERTH_ETCD_ENDPOINTS: 'http://a:1' }), { endpoints: ['http://c:3'], prefix: '/p' });
    assert.equal(normalizePrefix('/berth/'), '/berth');
  });
  it('lays keys out as docs/keys.md says', () => {
    assert.equal(resourceKey('/berth', 'EnvironmentGroup', 'qa-pool'), '/berth/groups/qa-pool');
    assert.equal(resourceKey('/berth', 'Environment', 'qa-1'), '/berth/environments/qa-1');
    assert.equal(statusKey('/berth', 'Environment', 'qa-1'), '/berth/status/environments/qa-1');
    assert.deepEqual(parseResourceKey('/berth', '/berth/environments/qa-1'), { kind: 'Environment', name: 'qa-1' });
    assert.equal(parseResourceKey('/berth', '/berth/status/environments/qa-1'), undefined);
    assert.equal(parseResourceKey('/berth', '/berth/routes/x/color'), undefined);
  });
});

describe('store: planApply', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  it('creates with generation 1, ignoring user-written generation and timestamp', () => {
    const e = env();
    e.metadata.generation = 9;
    e.metadata.creationTimestamp = 'yesterday';
    const out = planApply(undefined, e, now);
    assert.equal(out.result, 'created');
    assert.equal(out.resource.metadata.generation, 1);
    assert.equal(out.resource.metadata.creationTimestamp, now.toISOString());
  });
  it('a deletionTimestamp written in a file is ignored; a marked resource cannot be applied until it is gone', () => {
    const e = env();
    e.metadata.deletionTimestamp = '2020-01-01T00:00:00Z';
    const created = planApply(undefined, e, now).resource;
    assert.equal(created.metadata.deletionTimestamp, undefined);
    const marked = { ...created, metadata: { ...created.metadata, deletionTimestamp: now.toISOString() } };
    assert.throws(() => planApply(marked, env(), now), (err: unknown) => err instanceof ConflictError && /"qa-1" is being deleted/.test(err.message));
  });
  it('unchanged / configured with and without a generation bump', () => {
    const current = planApply(undefined, env(), now).resource;
    assert.equal(planApply(current, env(), now).result, 'unchanged');
    const spec = planApply(current, env('qa-1', { nodes: 5 }), now);
    assert.deepEqual([spec.result, spec.resource.metadata.generation, spec.resource.metadata.creationTimestamp], ['configured', 2, now.toISOString()]);
    const label = planApply(current, env('qa-1', { labels: { a: 'b' } }), now);
    assert.deepEqual([label.result, label.resource.metadata.generation], ['configured', 1]);
  });
});

describe('store: the generation of a raw write', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  it('berth apply records the hash of the spec its generation counts; the user\'s is ignored', () => {
    const e = env();
    e.metadata.specHash = 'forged';
    const created = planApply(undefined, e, now).resource;
    assert.equal(created.metadata.specHash, resourceSpecHash(created.spec));
    const edited = planApply(created, env('qa-1', { nodes: 5 }), now).resource;
    assert.equal(edited.metadata.specHash, resourceSpecHash(edited.spec));
  });
  it('a value berth applied keeps its generation', () => {
    const stored = planApply(undefined, env(), now).resource;
    assert.equal(withStoredGeneration(stored, '812').metadata.generation, 1);
  });
  it('a spec edited raw (hash no longer matches) takes the key\'s mod_revision as its generation', () => {
    const stored = planApply(undefined, env(), now).resource;
    const raw = { ...stored, spec: { ...stored.spec, nodes: 4 } };
    assert.equal(withStoredGeneration(raw, '812').metadata.generation, 812);
    // berth apply of a further change counts on from there, so generation only ever rises.
    const next = planApply(withStoredGeneration(raw, '812'), env('qa-1', { nodes: 6 }), now).resource;
    assert.equal(next.metadata.generation, 813);
    assert.equal(withStoredGeneration(next, '815').metadata.generation, 813);
  });
  it('a value written with no generation or no hash (confd-era tooling, an older berth) counts as raw', () => {
    const bare = env();
    assert.equal(withStoredGeneration(bare, '40').metadata.generation, 40);
    const legacy = { ...bare, metadata: { ...bare.metadata, generation: 3 } };
    assert.equal(withStoredGeneration(legacy, '41').metadata.generation, 41);
  });
});
