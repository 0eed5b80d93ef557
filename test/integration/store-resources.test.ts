import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ResourceStore, GroupInUseError } from '../../src/store/resources.js';
import { StatusStore } from '../../src/store/status.js';
import { pino } from 'pino';
import { AdapterError, InvalidStoredValueError, NotLeaderError } from '../../src/api/errors.js';
import { createClient, type EtcdClient } from '../../src/store/client.js';
import { StorePorts } from '../../src/reconcile/store-ports.js';
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

  it('a status read fails unless the key is absent; the controller reads an invalid status as absent and says so', async () => {
    const statuses = new StatusStore(client);
    await client.etcd.put('/berth-test/status/environments/qa-1').value('not json').exec();
    await client.etcd.put('/berth-test/status/environments/qa-2').value('{"phase":"Nope"}').exec();
    for (const name of ['qa-1', 'qa-2']) {
      await assert.rejects(statuses.getStatus('Environment', name), (err: unknown) => {
        assert.ok(err instanceof InvalidStoredValueError);
        assert.equal(err.key, `/berth-test/status/environments/${name}`);
        assert.equal(err.recoverable, false);
        return true;
      });
    }
    const reported: string[] = [];
    assert.equal((await statuses.listStatuses('Environment', (err) => reported.push(err.key))).size, 0);
    assert.deepEqual(reported.sort(), ['/berth-test/status/environments/qa-1', '/berth-test/status/environments/qa-2']);
    assert.deepEqual((await statuses.listStatusNames('Environment')).sort(), ['qa-1', 'qa-2']);

    const logged: string[] = [];
    const ports = new StorePorts(client, pino({ level: 'warn' }, { write: (line: string) => logged.push(line) }));
    assert.equal(await ports.getEnvironmentStatus('qa-1'), undefined);
    assert.match(logged.join(''), /status\/environments\/qa-1.*stored status is not valid/);
    assert.deepEqual((await ports.listEnvironmentStatusNames()).sort(), ['qa-1', 'qa-2'], 'a status left behind is still found for cleanup');
    assert.equal(await ports.getEnvironmentStatus('absent'), undefined);

    const unreachable = createClient({ endpoints: ['http://127.0.0.1:1'], prefix: '/berth-test', callTimeoutMs: 300, retries: 0 });
    try {
      const isUnavailable = (err: unknown) => err instanceof AdapterError && !(err instanceof InvalidStoredValueError) && err.recoverable;
      await assert.rejects(new StatusStore(unreachable).getStatus('Environment', 'qa-1'), isUnavailable);
      await assert.rejects(new StorePorts(unreachable, pino({ level: 'silent' })).getEnvironmentStatus('qa-1'), isUnavailable, 'never taken for "no status"');
    } finally {
      unreachable.close();
    }
  });
  it('the leader remembers the statuses it wrote for its term only; a failed write is forgotten', async () => {
    // A fence over a real leader key: each create of the key is a new term.
    const leaderKey = '/berth-test/leader';
    let token = { key: leaderKey, createRevision: '0' };
    const newTerm = async () => {
      await client.etcd.delete().key(leaderKey).exec();
      await client.etcd.put(leaderKey).value('me').exec();
      token = { key: leaderKey, createRevision: (await client.etcd.get(leaderKey).exec()).kvs[0]!.create_revision };
    };
    await newTerm();
    const lost: Error[] = [];
    const fenced = client.fenced({ token: () => token, lost: (err) => lost.push(err) });
    const ports = new StorePorts(fenced, pino({ level: 'silent' }));
    const key = '/berth-test/status/environments/qa-1';
    const status = (phase: 'Ready' | 'Progressing') => ({ observedGeneration: 1, phase, conditions: [], nodes: [], services: {}, updatedAt: new Date().toISOString() });

    await ports.putEnvironmentStatus('qa-1', status('Ready'));
    // Nobody but the leader writes statuses; were someone to, this term would not read it back.
    await client.etcd.put(key).value(JSON.stringify(status('Progressing'))).exec();
    assert.equal((await ports.getEnvironmentStatus('qa-1'))?.phase, 'Ready', 'read from what this term wrote');
    const held = await ports.getEnvironmentStatus('qa-1');
    held!.phase = 'Failed';
    assert.equal((await ports.getEnvironmentStatus('qa-1'))?.phase, 'Ready', 'a caller changing its copy changes nothing');

    // A new term reads etcd: one list of every status, not one read each.
    await client.etcd.put('/berth-test/status/environments/qa-2').value(JSON.stringify(status('Ready'))).exec();
    await newTerm();
    const calls: string[] = [];
    const call = fenced.call.bind(fenced);
    fenced.call = (operation, fn) => (calls.push(operation.split(' ')[0]!), call(operation, fn));
    const [one, two, none] = await Promise.all(['qa-1', 'qa-2', 'qa-3'].map((n) => ports.getEnvironmentStatus(n)));
    assert.deepEqual([one?.phase, two?.phase, none], ['Progressing', 'Ready', undefined]);
    assert.deepEqual(calls, ['list'], 'three statuses from one list; qa-3 has none');
    fenced.call = call;

    // A write that failed is forgotten: it may or may not have landed, so the next read goes to etcd.
    await client.etcd.put(key).value(JSON.stringify(status('Ready'))).exec();
    await assert.rejects(ports.putEnvironmentStatus('qa-1', { ...status('Ready'), phase: 'Nope' as never }));
    assert.equal((await ports.getEnvironmentStatus('qa-1'))?.phase, 'Ready');
    assert.deepEqual(lost, []);

    await ports.deleteEnvironmentStatus('qa-1');
    assert.equal(await client.etcd.get(key).string(), null);
    assert.equal(await ports.getEnvironmentStatus('qa-1'), undefined);
  });

  it('puts asked for while one is on its way are written together, all or none, the last of a key winning', async () => {
    const leaderKey = '/berth-test/leader';
    await client.etcd.put(leaderKey).value('me').exec();
    let token = { key: leaderKey, createRevision: (await client.etcd.get(leaderKey).exec()).kvs[0]!.create_revision };
    const lost: Error[] = [];
    const fenced = client.fenced({ token: () => token, lost: (err) => lost.push(err) });
    const keys = Array.from({ length: 20 }, (_, i) => `/berth-test/status/environments/e${i}`);
    await Promise.all([...keys.map((k) => fenced.putTogether(k, 'v1')), fenced.putTogether(keys[0]!, 'v2')]);
    const kvs = (await client.etcd.getAll().prefix('/berth-test/status/').exec()).kvs;
    assert.deepEqual(kvs.map((kv) => kv.value.toString()).sort(), [...Array(19).fill('v1'), 'v2'].sort(), 'every put landed; e0 took its later value');
    const revisions = new Set(kvs.map((kv) => kv.mod_revision));
    assert.ok(revisions.size <= 3, `21 puts in ${revisions.size} transactions: the first alone, the rest gathered, e0's second after`);

    token = { key: leaderKey, createRevision: '1' }; // another term's: the fence no longer holds
    const stale = await Promise.allSettled(keys.slice(0, 5).map((k) => fenced.putTogether(k, 'stale')));
    assert.ok(stale.every((r) => r.status === 'rejected' && r.reason instanceof NotLeaderError), 'each caller hears the fence failed');
    const after = (await client.etcd.getAll().prefix('/berth-test/status/').strings());
    assert.ok(Object.values(after).every((v) => v !== 'stale'), 'none of them landed');
    assert.ok(lost.length >= 1);
  });

  it('writes with compares asked for meanwhile land in one transaction; a stale compare fails only its own write', async () => {
    const keys = Array.from({ length: 6 }, (_, i) => `/berth-test/routes/u${i}/owner`);
    for (const k of keys) await client.etcd.put(k).value('old').exec();
    const mods = await Promise.all(keys.map(async (k) => (await client.etcd.get(k).exec()).kvs[0]!.mod_revision));
    await client.etcd.put(keys[3]!).value('someone else').exec(); // u3's read is stale now
    const first = client.writeTogether('first', { compares: [], deletes: [], puts: [['/berth-test/routes/first', 'x']] });
    const rest = keys.map((k, i) => client.writeTogether(`write u${i}`, { compares: [[k, mods[i]!]], deletes: [], puts: [[k, 'new']] }));
    const revisions = await Promise.all([first, ...rest]);
    assert.equal(revisions[4], undefined, "u3's compare failed");
    const landed = revisions.filter((r) => r !== undefined);
    assert.equal(landed.length, 6, 'the first write and the five fresh ones landed');
    const values = await Promise.all(keys.map((k) => client.etcd.get(k).string()));
    assert.deepEqual(values, ['new', 'new', 'new', 'someone else', 'new', 'new']);
    // The five went out in one batch that failed on u3, then each alone: five revisions, not one.
    assert.equal(new Set(revisions.slice(1).filter((r) => r !== undefined)).size, 5);

    const again = await Promise.all([client.writeTogether('one', { compares: [], deletes: [], puts: [['/berth-test/a', '1']] }), ...['b', 'c', 'd'].map((k) => client.writeTogether(k, { compares: [[`/berth-test/${k}`, 0]], deletes: [keys[0]!], puts: [[`/berth-test/${k}`, '1']] }))]);
    assert.ok(again.every((r) => r !== undefined));
    assert.equal(new Set(again).size, 3, "asked for in one turn: 'one' and b together; c and d delete b's key too, so each follows in a batch of its own, in order");
  });

  it('route reads asked for in one turn, or while one is on its way, share one transaction', async () => {
    await client.etcd.put('/berth-test/routes/a/owner').value('qa-1/web').exec();
    await client.etcd.put('/berth-test/routes/b/servers/x').value('10.0.0.1:80').exec();
    let calls = 0;
    const call = client.call.bind(client);
    client.call = (operation, fn) => (calls++, call(operation, fn));
    try {
      const prefixes = [['/berth-test/routes/a/'], ['/berth-test/routes/b/', '/berth-test/routes/none/'], ['/berth-test/routes/a/']];
      const expected = [[['/berth-test/routes/a/owner']], [['/berth-test/routes/b/servers/x'], []], [['/berth-test/routes/a/owner']]];
      const keysOf = (reads: { key: Buffer }[][][]) => reads.map((r) => r.map((kvs) => kvs.map((kv) => kv.key.toString())));
      assert.deepEqual(keysOf(await Promise.all(prefixes.map((p) => client.rangePrefixes('get', p)))), expected);
      assert.equal(calls, 1, 'the three reads of one turn in one call');

      const first = client.rangePrefixes('get', prefixes[0]!);
      await new Promise((r) => setImmediate(r)); // the first read is on its way
      const meanwhile = prefixes.slice(1).map((p) => client.rangePrefixes('get', p));
      assert.deepEqual(keysOf(await Promise.all([first, ...meanwhile])), expected);
      assert.equal(calls, 3, 'the first read alone, the two asked for meanwhile together');
    } finally {
      client.call = call;
    }
  });
});
