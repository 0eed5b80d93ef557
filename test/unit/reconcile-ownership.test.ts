import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { environmentSchema, groupSchema, type Environment } from '../../src/api/index.js';
import { allKeys } from '../../src/controller/list-keys.js';
import { decideOrphan } from '../../src/reconcile/orphans.js';
import { EnvironmentReconciler } from '../../src/reconcile/reconciler-environment.js';
import { InstallationSwarm } from '../../src/swarm/installation-swarm.js';
import { LABEL_ENV, LABEL_INSTALLATION } from '../../src/swarm/labels.js';
import { createMetrics, type BerthMetrics } from '../../src/metrics/registry.js';
import { metricValue } from '../support/fake-runtime.js';
import { FakeStore } from '../support/fake-store.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';

const log = pino({ level: 'silent' });
const T0 = new Date('2030-01-01T00:00:00Z');

function env(name: string, nodes = 1, services: Record<string, unknown> = { web: { image: '10.77.0.1:5000/web:v1', replicas: 1, ports: [{ target: 8080 }] } }): Environment {
  return environmentSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name, generation: 1 }, spec: { group: 'g', nodes, services } });
}

/** One installation: its own etcd (a FakeStore) and a reconciler, on a Swarm shared with others. */
function installation(swarm: FakeSwarm, id: string, clock = { t: T0 }, metrics?: BerthMetrics) {
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  const r = new EnvironmentReconciler({ swarm, installation: id, resources: store, status: store, routes: store, promotions: store, gc: store, log, metrics, now: () => clock.t });
  return { store, r, clock };
}

const writes = (swarm: FakeSwarm, from = 0) => swarm.calls.slice(from).filter((c) => !c.startsWith('list') && !c.startsWith('inspect'));
const serviceState = (swarm: FakeSwarm) => swarm.services.map((s) => `${s.id}:${s.name}:v${s.version}`).sort();

async function converged(swarm: FakeSwarm, inst: ReturnType<typeof installation>, ...names: string[]) {
  for (const n of names) for (let i = 0; i < 3; i++) await inst.r.reconcile(n);
}

test('a controller on an empty prefix touches nothing another installation runs, and queues none of it', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  const a = installation(swarm, 'inst-a');
  a.store.envs.set('qa', env('qa', 2));
  await converged(swarm, a, 'qa');
  assert.ok(swarm.services.every((s) => s.labels[LABEL_INSTALLATION] === 'inst-a'), 'services carry the installation');
  assert.equal(swarm.nodes.filter((n) => n.labels[LABEL_INSTALLATION] === 'inst-a' && n.labels[LABEL_ENV] === 'qa').length, 2, 'claims carry it too');

  const before = serviceState(swarm);
  const nodesBefore = structuredClone(swarm.nodes);
  const b = installation(swarm, 'inst-b'); // empty etcd: no environment, no status
  const from = swarm.calls.length;
  b.clock.t = new Date(T0.getTime() + 3_600_000); // far past any grace
  assert.deepEqual(await b.r.reconcile('qa'), {});
  assert.deepEqual(writes(swarm, from), []);
  assert.deepEqual(serviceState(swarm), before);
  assert.deepEqual(swarm.nodes, nodesBefore);
  assert.equal(b.store.envStatus.size, 0, 'no orphan record for what was never ours');
  assert.deepEqual(await allKeys(b.store, b.store, swarm, 'inst-b'), ['group/g']);
  assert.deepEqual(await allKeys(a.store, a.store, swarm, 'inst-a'), ['env/qa', 'group/g']);
});

test('another installation claims around foreign claims and never takes or releases them', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  const a = installation(swarm, 'inst-a');
  a.store.envs.set('qa', env('qa', 2));
  await converged(swarm, a, 'qa');
  const b = installation(swarm, 'inst-b');
  b.store.envs.set('other', env('other', 3, {}));
  await converged(swarm, b, 'other');
  assert.equal(swarm.nodes.filter((n) => n.labels[LABEL_INSTALLATION] === 'inst-a').length, 2, "a's claims kept");
  assert.equal(swarm.nodes.filter((n) => n.labels[LABEL_ENV] === 'other').length, 1, 'b took the one free node');
});

test('the installation fence refuses to change or remove another installation’s service or claimed node', async () => {
  const swarm = new FakeSwarm([fakeNode(1, { labels: { [LABEL_ENV]: 'qa', [LABEL_INSTALLATION]: 'inst-a' } })]);
  const id = swarm.addForeignService('qa_web', { [LABEL_ENV]: 'qa', [LABEL_INSTALLATION]: 'inst-a' });
  const b = new InstallationSwarm(swarm, 'inst-b');
  await assert.rejects(b.removeService(id), /belongs to installation inst-a/);
  await assert.rejects(b.scaleService(id, 1, 0), /belongs to installation inst-a/);
  await assert.rejects(b.updateNodeLabels('node1', 1, { pool: 'lab' }), /belongs to installation inst-a/);
  assert.deepEqual(writes(swarm), []);
});

test('objects of an older berth (no installation label) are adopted in place by the installation whose etcd holds the environment, by no other', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  const a = installation(swarm, 'inst-a');
  a.store.envs.set('qa', env('qa', 2));
  await converged(swarm, a, 'qa');
  // What a berth without installation ids left behind.
  for (const o of [...swarm.services, ...swarm.nodes]) delete o.labels[LABEL_INSTALLATION];
  const ids = swarm.services.map((s) => s.id);

  const stranger = installation(swarm, 'inst-b');
  let from = swarm.calls.length;
  await stranger.r.reconcile('qa');
  assert.deepEqual(writes(swarm, from), [], 'not in its etcd: not its to adopt');

  const fresh = installation(swarm, 'inst-c'); // say, a new controller over the same etcd contents
  fresh.store.envs.set('qa', env('qa', 2));
  from = swarm.calls.length;
  await converged(swarm, fresh, 'qa');
  assert.deepEqual(writes(swarm, from).sort(), ['updateNode', 'updateNode', 'updateService'], 'labels added: one service update, two node updates');
  assert.deepEqual(swarm.services.map((s) => s.id), ids, 'same services');
  assert.ok(swarm.services.every((s) => s.labels[LABEL_INSTALLATION] === 'inst-c'));
  assert.equal(swarm.nodes.filter((n) => n.labels[LABEL_INSTALLATION] === 'inst-c').length, 2);
  from = swarm.calls.length;
  await fresh.r.reconcile('qa');
  assert.deepEqual(writes(swarm, from), [], 'adopted once, then converged');
});

/** `n` environments of this installation: `qa` runs a service, the others hold nothing. */
async function world(n: number, metrics?: BerthMetrics) {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  const a = installation(swarm, 'inst-a', { t: T0 }, metrics);
  a.store.envs.set('qa', env('qa', 1));
  for (let i = 1; i < n; i++) a.store.envs.set(`e${i}`, env(`e${i}`, 0, {}));
  await converged(swarm, a, 'qa');
  return { swarm, a };
}

test('a key deleted without the mark keeps its services for the grace, then they go (1 of 4: not braked)', async () => {
  const { swarm, a } = await world(4);
  const before = serviceState(swarm);
  a.store.envs.delete('qa');
  assert.deepEqual(await a.r.reconcile('qa'), { requeueAfterMs: 60_000 });
  assert.deepEqual(serviceState(swarm), before);
  const held = a.store.envStatus.get('qa')!.conditions.find((c) => c.type === 'Orphaned')!;
  assert.equal(held.reason, 'GracePeriod');
  assert.equal(held.lastTransitionTime, T0.toISOString());

  a.clock.t = new Date(T0.getTime() + 59_000);
  assert.deepEqual(await a.r.reconcile('qa'), { requeueAfterMs: 1_000 });
  assert.deepEqual(serviceState(swarm), before, 'still within the grace');

  a.clock.t = new Date(T0.getTime() + 60_000);
  assert.deepEqual(await a.r.reconcile('qa'), {});
  assert.equal(swarm.services.length, 0);
  assert.ok(swarm.nodes.every((n) => !(LABEL_ENV in n.labels) && !(LABEL_INSTALLATION in n.labels)));
  assert.equal(a.store.routes.size, 0);
  assert.equal(a.store.envStatus.has('qa'), false);
});

test('re-applying the same spec within the grace adopts the running services unchanged', async () => {
  const { swarm, a } = await world(4);
  const before = serviceState(swarm);
  const spec = a.store.envs.get('qa')!;
  a.store.envs.delete('qa');
  await a.r.reconcile('qa');
  a.clock.t = new Date(T0.getTime() + 30_000);
  a.store.envs.set('qa', spec);
  const from = swarm.calls.length;
  await a.r.reconcile('qa');
  await a.r.reconcile('qa');
  assert.deepEqual(writes(swarm, from), [], 'no Docker write at all');
  assert.deepEqual(serviceState(swarm), before, 'same ids, same versions');
  const st = a.store.envStatus.get('qa')!;
  assert.equal(st.phase, 'Ready');
  assert.ok(!st.conditions.some((c) => c.type === 'Orphaned'));
  a.clock.t = new Date(T0.getTime() + 3_600_000);
  await a.r.reconcile('qa');
  assert.deepEqual(serviceState(swarm), before, 'the old grace no longer applies');
});

test('the brake: the last environment, or more than a quarter at once, is held past the grace until berth gc --confirm', async () => {
  for (const [n, deleted, reason] of [
    [1, ['qa'], 'LastEnvironment'],
    [2, ['qa', 'e1'], 'LastEnvironment'],
    [3, ['qa'], 'MassDeletion'],
  ] as const) {
    const { swarm, a } = await world(n);
    const before = serviceState(swarm);
    for (const d of deleted) a.store.envs.delete(d);
    await a.r.reconcile('qa');
    a.clock.t = new Date(T0.getTime() + 120_000);
    assert.deepEqual(await a.r.reconcile('qa'), { requeueAfterMs: 5_000 }, `${n}: looked at again soon (gc raises no event)`);
    assert.deepEqual(serviceState(swarm), before, `${n}: held`);
    const held = a.store.envStatus.get('qa')!.conditions.find((c) => c.type === 'Orphaned')!;
    assert.equal(held.reason, reason);
    assert.equal(held.lastTransitionTime, T0.toISOString(), 'since: when the key went');

    a.store.gcReleased.add('qa');
    await a.r.reconcile('qa');
    assert.equal(swarm.services.length, 0, `${n}: released by gc`);
    assert.equal(a.store.envStatus.has('qa'), false);
    assert.equal(a.store.gcReleased.has('qa'), false, 'the release is consumed');
  }
});

test('decideOrphan: grace first, then the last-environment and quarter brakes; a release overrides both', () => {
  const base = { since: T0, now: new Date(T0.getTime() + 61_000), graceMs: 60_000, released: false };
  const d = (environments: number, orphans: number, extra = {}) => decideOrphan({ ...base, environments, orphans, ...extra });
  assert.equal(d(10, 1, { now: new Date(T0.getTime() + 1_000) }).delete, false);
  assert.deepEqual((d(10, 1, { now: new Date(T0.getTime() + 1_000) }) as { recheckAfterMs: number }).recheckAfterMs, 59_000);
  assert.equal(d(3, 1).delete, true, '1 of 4 is a quarter: allowed');
  assert.equal((d(2, 1) as { hold: string }).hold, 'MassDeletion', '1 of 3');
  assert.equal((d(6, 3) as { hold: string }).hold, 'MassDeletion', '3 of 9');
  assert.equal((d(0, 5) as { hold: string }).hold, 'LastEnvironment');
  assert.equal(d(0, 5, { released: true }).delete, true);
  assert.equal(d(10, 1, { released: true, now: T0 }).delete, true, 'a release skips the grace too');
});

test('ttl expiry takes the explicit path: marked, cleaned up, then the key removed', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  const a = installation(swarm, 'inst-a');
  a.store.envs.set('tmp', environmentSchema.parse({ ...env('tmp', 1), metadata: { name: 'tmp', creationTimestamp: T0.toISOString() }, spec: { ...env('tmp', 1).spec, ttl: '1h' } }));
  await converged(swarm, a, 'tmp');
  assert.equal(swarm.services.length, 1);
  a.clock.t = new Date(T0.getTime() + 3_600_001);
  await a.r.reconcile('tmp');
  assert.equal(swarm.services.length, 0, 'no orphan grace for an expiry');
  assert.equal(a.store.envs.has('tmp'), false);
});

test('berth_deletions_held follows the hold: grace, then the brake, then nothing once released', async () => {
  const metrics = createMetrics();
  const { a } = await world(1, metrics);
  const held = (reason: string) => metricValue(metrics.deletionsHeld, { reason });
  assert.equal(await held('GracePeriod'), 0);
  a.store.envs.delete('qa');
  await a.r.reconcile('qa');
  assert.equal(await held('GracePeriod'), 1);
  a.clock.t = new Date(T0.getTime() + 120_000);
  await a.r.reconcile('qa');
  assert.deepEqual([await held('GracePeriod'), await held('LastEnvironment')], [0, 1]);
  a.store.gcReleased.add('qa');
  await a.r.reconcile('qa');
  assert.deepEqual([await held('GracePeriod'), await held('LastEnvironment'), await held('MassDeletion')], [0, 0, 0]);
});
