import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { AdapterError, InvalidInputError, InvalidStoredResourceError, environmentSchema, groupSchema, type Environment } from '../../src/api/index.js';
import { EnvironmentReconciler } from '../../src/reconcile/reconciler-environment.js';
import { TerminalError } from '../../src/runtime/handler.js';
import { GroupReconciler } from '../../src/reconcile/reconciler-group.js';
import { FakeStore } from '../support/fake-store.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';
import { LABEL_ENV } from '../../src/swarm/labels.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { metricValue } from '../support/fake-runtime.js';

const log = pino({ level: 'silent' });

function env(name: string, nodes: number, extra: Partial<Environment['spec']> & Record<string, unknown> = {}, meta: Record<string, unknown> = {}): Environment {
  return environmentSchema.parse({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name, generation: 3, ...meta },
    spec: { group: 'g', nodes, services: { web: { image: '10.77.0.1:5000/web:v1', replicas: 2, ports: [{ target: 8080 }], placement: { maxPerNode: 1 } } }, ...extra },
  });
}

function setup() {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  const now = { t: new Date('2030-01-01T00:00:00Z') };
  const r = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, now: () => now.t });
  return { swarm, store, r, now };
}

test('reconciles to Ready: nodes, service, status with endpoints, route', async () => {
  const { swarm, store, r } = setup();
  store.envs.set('qa', env('qa', 2));
  const first = await r.reconcile('qa');
  assert.equal(first.requeueAfterMs, 1_000, 'changed something: look again soon (half the 2 s poll)');
  assert.equal(store.envStatus.get('qa')?.phase, 'Progressing');
  const second = await r.reconcile('qa');
  assert.deepEqual(second, {});
  const st = store.envStatus.get('qa')!;
  assert.equal(st.phase, 'Ready');
  assert.equal(st.observedGeneration, 3);
  assert.equal(st.nodes.length, 2);
  // One task on each held node, at the port the fake Swarm publishes.
  const endpoints = swarm.nodes.filter((n) => n.labels[LABEL_ENV] === 'qa').map((n) => `${n.addr}:30000`).sort();
  assert.equal(endpoints.length, 2);
  assert.deepEqual(st.services.web, {
    desiredReplicas: 2,
    runningReplicas: 2,
    image: '10.77.0.1:5000/web:v1',
    endpoints,
    route: { upstream: 'qa-web', servers: endpoints },
    tasksPerNode: Object.fromEntries(swarm.nodes.filter((n) => n.labels[LABEL_ENV] === 'qa').map((n) => [n.hostname, 1])),
  });
  assert.deepEqual(store.routes.get('qa-web'), { upstream: 'qa-web', servers: endpoints, owner: { env: 'qa', service: 'web' } });
  const calls = swarm.calls.length;
  await r.reconcile('qa');
  assert.deepEqual(swarm.calls.slice(calls).filter((c) => !c.startsWith('list')), [], 'idempotent: no writes when converged');
});

test('a Docker failure is thrown (retried by the queue) and the next pass converges', async () => {
  const { swarm, store, r } = setup();
  store.envs.set('qa', env('qa', 2));
  swarm.failNext('createService');
  await assert.rejects(r.reconcile('qa'), AdapterError);
  await r.reconcile('qa');
  await r.reconcile('qa');
  assert.equal(store.envStatus.get('qa')?.phase, 'Ready');
  assert.equal(swarm.services.length, 1);
});

test('missing group → Degraded, re-checked slowly', async () => {
  const { store, r } = setup();
  store.envs.set('orphan', env('orphan', 1, { group: 'nope' }));
  assert.deepEqual(await r.reconcile('orphan'), { requeueAfterMs: 30_000 });
  const st = store.envStatus.get('orphan')!;
  assert.equal(st.phase, 'Degraded');
  assert.equal(st.conditions.find((c) => c.type === 'Ready')?.reason, 'GroupNotFound');
});

test('an invalid stored spec: services left running, Failed/InvalidSpec, a terminal error once per revision of the value', async () => {
  const { swarm, store, r } = setup();
  store.envs.set('qa', env('qa', 2));
  await r.reconcile('qa');
  await r.reconcile('qa');
  const services = JSON.stringify(swarm.services);
  let statusWrites = 0;
  const put = store.putEnvironmentStatus.bind(store);
  store.putEnvironmentStatus = async (name, s) => {
    statusWrites++;
    return put(name, s);
  };
  const invalidAt = (revision: string) =>
    new InvalidStoredResourceError(new InvalidInputError([{ path: '', message: 'not JSON: Unexpected token' }], { file: 'etcd:/berth/environments/qa', document: 1 }), revision);
  store.envs.delete('qa');
  store.invalid.set('qa', invalidAt('41'));
  const calls = swarm.calls.length;

  await assert.rejects(r.reconcile('qa'), (err: Error) => err instanceof TerminalError && /revision 41/.test(err.message));
  const st = store.envStatus.get('qa')!;
  assert.equal(st.phase, 'Failed');
  assert.equal(st.conditions.find((c) => c.type === 'Ready')?.reason, 'InvalidSpec');
  assert.deepEqual(Object.keys(st.services), ['web'], 'the last observed services stay in the status');
  assert.equal(statusWrites, 1);
  // Every Docker event of its services runs the key again: nothing is written, logged or thrown.
  for (let i = 0; i < 5; i++) assert.deepEqual(await r.reconcile('qa'), {});
  assert.equal(statusWrites, 1, 'one status write for the revision');

  store.invalid.set('qa', invalidAt('42')); // another bad write: reported again
  await assert.rejects(r.reconcile('qa'), TerminalError);
  assert.deepEqual(await r.reconcile('qa'), {});

  assert.deepEqual(swarm.calls.slice(calls).filter((c) => !c.startsWith('list')), [], 'no Swarm change while the spec is invalid');
  assert.equal(JSON.stringify(swarm.services), services);
});

test('short of nodes → Degraded with NodesShort: missing N of M', async () => {
  const { store, r } = setup();
  store.envs.set('big', env('big', 5));
  await r.reconcile('big');
  await r.reconcile('big');
  const st = store.envStatus.get('big')!;
  assert.equal(st.phase, 'Degraded');
  assert.ok(st.conditions.some((c) => c.reason === 'NodesShort' && c.message === 'NodesShort: missing 2 of 5'));
});

test('marked for deletion (berth delete) → services, labels, routes, status, then the key removed', async () => {
  const { swarm, store, r } = setup();
  store.envs.set('qa', env('qa', 2));
  await r.reconcile('qa');
  await r.reconcile('qa');
  await store.markEnvironmentDeleted('qa');
  await r.reconcile('qa');
  assert.equal(swarm.services.length, 0);
  assert.ok(swarm.nodes.every((n) => !('berth.env' in n.labels) && !('berth.installation' in n.labels)));
  assert.equal(store.routes.size, 0);
  assert.equal(store.envStatus.has('qa'), false);
  assert.equal(store.envs.has('qa'), false, 'the key goes last');
});

test('TTL expired → the environment is deleted from etcd and cleaned up', async () => {
  const { swarm, store, r, now } = setup();
  store.envs.set('tmp', env('tmp', 1, { ttl: '1h' }, { creationTimestamp: '2030-01-01T00:00:00Z' }));
  const res = await r.reconcile('tmp');
  await r.reconcile('tmp');
  assert.equal(store.envStatus.get('tmp')?.expiresAt, '2030-01-01T01:00:00.000Z');
  assert.ok(res.requeueAfterMs !== undefined);
  now.t = new Date('2030-01-01T01:00:01Z');
  await r.reconcile('tmp');
  assert.equal(store.envs.has('tmp'), false);
  assert.equal(swarm.services.length, 0);
  assert.equal(store.envStatus.has('tmp'), false);
});

test('ttl counts from when the controller first saw the environment, not from the client\'s creationTimestamp', async () => {
  const { swarm, store, r, now } = setup();
  // `berth apply` ran on a machine whose clock is two days behind.
  store.envs.set('tmp', env('tmp', 1, { ttl: '1h' }, { creationTimestamp: '2029-12-30T00:00:00Z' }));
  await r.reconcile('tmp');
  assert.equal(store.envs.has('tmp'), true, 'not expired on sight');
  assert.equal(store.envStatus.get('tmp')?.firstObservedAt, '2030-01-01T00:00:00.000Z');
  assert.equal(store.envStatus.get('tmp')?.expiresAt, '2030-01-01T01:00:00.000Z');
  now.t = new Date('2030-01-01T00:59:59Z');
  await r.reconcile('tmp');
  assert.equal(store.envs.has('tmp'), true);
  assert.equal(store.envStatus.get('tmp')?.firstObservedAt, '2030-01-01T00:00:00.000Z', 'kept across reconciles');
  now.t = new Date('2030-01-01T01:00:00Z');
  await r.reconcile('tmp');
  assert.equal(store.envs.has('tmp'), false, 'deleted once ttl has passed by the controller\'s clock');
  assert.equal(swarm.services.length, 0);
});

test('a ttl of a year asks to be looked at again in a year, not sooner', async () => {
  const { store, r } = setup();
  store.envs.set('long', env('long', 2, { ttl: '365d' }));
  await r.reconcile('long');
  const res = await r.reconcile('long');
  assert.equal(store.envStatus.get('long')?.phase, 'Ready');
  assert.equal(res.requeueAfterMs, 365 * 86_400_000);
});

test('a blue-green service is deployed as <env>_<service>_blue and routed with colour blue', async () => {
  const { swarm, store, r } = setup();
  store.envs.set('bg', env('bg', 1, { services: { web: { image: '10.77.0.1:5000/web:v1', replicas: 1, ports: [{ target: 8080 }], strategy: { type: 'blueGreen' } } } as never }));
  await r.reconcile('bg');
  await r.reconcile('bg');
  assert.deepEqual(swarm.services.map((s) => s.name), ['bg_web_blue']);
  assert.equal(store.routes.get('bg-web')?.color, 'blue');
  assert.equal(store.envStatus.get('bg')?.services.web?.activeColor, 'blue');
});

test('group status counts pool nodes and claims', async () => {
  const { swarm, store, r } = setup();
  store.envs.set('qa', env('qa', 2));
  await r.reconcile('qa');
  await new GroupReconciler({ swarm, resources: store, status: store, log }).reconcile('g');
  const gs = store.groupStatus.get('g')!;
  assert.equal(gs.poolNodes, 3);
  assert.deepEqual(gs.claims, { qa: 2 });
});

test('berth_environments{phase} follows the phases the reconciler decides, and forgets a removed environment', async () => {
  const { swarm, store } = setup();
  const metrics = createMetrics();
  const r = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, metrics });
  const count = async (phase: string) => metricValue(metrics.environments, { phase });
  store.envs.set('qa', env('qa', 2));
  store.envs.set('qb', env('qb', 1));
  await r.reconcile('qa');
  await r.reconcile('qb');
  assert.equal(await count('Progressing'), 2);
  await r.reconcile('qa');
  assert.equal(await count('Progressing'), 1);
  assert.equal(await count('Ready'), 1);
  await store.markEnvironmentDeleted('qa');
  await r.reconcile('qa');
  assert.equal(await count('Ready'), 0);
  assert.equal(await count('Progressing'), 1);
});

test('Swarm rolls a rolling update back: RolledBack, phase Degraded, the same spec never issued again until it changes', async () => {
  const { swarm, store, r } = setup();
  const at = (image: string, generation: number) => env('qa', 2, { services: { web: { image, replicas: 2, ports: [{ target: 8080 }], placement: { maxPerNode: 1 } } } as never }, { generation });
  store.envs.set('qa', at('10.77.0.1:5000/web:v1', 3));
  await r.reconcile('qa');
  await r.reconcile('qa');
  store.envs.set('qa', at('10.77.0.1:5000/web:broken', 4));
  await r.reconcile('qa');
  assert.equal(swarm.services[0]?.image, '10.77.0.1:5000/web:broken', 'the update was issued');
  await r.reconcile('qa');
  swarm.rollBack('qa_web', '2030-01-01T00:00:10Z');
  const updates = () => swarm.calls.filter((c) => c === 'updateService').length;
  const before = updates();

  for (let i = 0; i < 5; i++) await r.reconcile('qa');
  assert.equal(updates(), before, 'the rolled-back spec is not issued again');
  assert.equal(swarm.services[0]?.image, '10.77.0.1:5000/web:v1', 'Swarm\'s rollback stands');
  const st = store.envStatus.get('qa')!;
  assert.equal(st.phase, 'Degraded');
  const cond = st.conditions.find((c) => c.type === 'RolledBack');
  assert.equal(cond?.status, 'True');
  assert.match(cond!.message, /web: Swarm rolled back the update to 10\.77\.0\.1:5000\/web:broken/);
  assert.equal(st.conditions.find((c) => c.type === 'Ready')?.reason, 'UpdateRolledBack');
  assert.equal(st.services.web?.rolledBack?.image, '10.77.0.1:5000/web:broken');
  assert.equal(st.services.web?.image, '10.77.0.1:5000/web:v1', 'the status shows what runs');

  store.envs.set('qa', at('10.77.0.1:5000/web:v2', 5));
  await r.reconcile('qa');
  assert.equal(updates(), before + 1, 'a changed spec is issued, once');
  await r.reconcile('qa');
  const after = store.envStatus.get('qa')!;
  assert.equal(after.phase, 'Ready');
  assert.equal(after.conditions.some((c) => c.type === 'RolledBack'), false);
  assert.equal(after.services.web?.rolledBack, undefined);
});

test('a rollback seen only after the spec changed again is of an older spec: the new spec is issued', async () => {
  const { swarm, store, r } = setup();
  const at = (image: string, generation: number) => env('qa', 2, { services: { web: { image, replicas: 2, ports: [{ target: 8080 }], placement: { maxPerNode: 1 } } } as never }, { generation });
  store.envs.set('qa', at('10.77.0.1:5000/web:v1', 3));
  await r.reconcile('qa');
  await r.reconcile('qa');
  store.envs.set('qa', at('10.77.0.1:5000/web:broken', 4));
  await r.reconcile('qa');
  swarm.rollBack('qa_web', '2030-01-01T00:00:10Z');
  store.envs.set('qa', at('10.77.0.1:5000/web:v2', 5)); // applied before berth looked again
  await r.reconcile('qa');
  assert.equal(swarm.services[0]?.image, '10.77.0.1:5000/web:v2');
  assert.equal(store.envStatus.get('qa')?.conditions.some((c) => c.type === 'RolledBack'), false);
});

/** A one-replica web service spec, as written in YAML. */
const svc = (extra: Record<string, unknown> = {}) => ({ image: '10.77.0.1:5000/web:v1', replicas: 1, ports: [{ target: 8080 }], ...extra });
const services = (s: Record<string, Record<string, unknown>>) => ({ services: s }) as unknown as Partial<Environment['spec']>;

test('an environment naming another one\'s upstream gets RouteConflict and changes nothing of it; its other services proceed', async () => {
  const { swarm, store } = setup();
  const metrics = createMetrics();
  const r2 = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, metrics, now: () => new Date('2030-01-01T00:00:00Z') });
  store.envs.set('qa', env('qa', 1, services({ web: svc() })));
  await r2.reconcile('qa');
  await r2.reconcile('qa');
  const owned = structuredClone(store.routes.get('qa-web'));
  assert.ok(owned && owned.servers.length === 1);
  store.envs.set(
    'qb',
    env('qb', 1, services({ web: svc({ route: { upstream: 'qa-web' } }), api: svc() })),
  );
  await r2.reconcile('qb');
  await r2.reconcile('qb');
  assert.deepEqual(store.routes.get('qa-web'), owned, 'the owner\'s route is untouched');
  assert.ok((store.routes.get('qb-api')?.servers.length ?? 0) > 0, 'the non-conflicting service is routed');
  const st = store.envStatus.get('qb')!;
  assert.equal(st.phase, 'Degraded');
  const cond = st.conditions.find((c) => c.type === 'RouteConflict');
  assert.equal(cond?.status, 'True');
  assert.match(cond?.message ?? '', /web: upstream qa-web belongs to qa\/web/);
  assert.equal(st.services.web?.route, undefined);
  assert.equal((await metrics.routeConflicts.get()).values[0]?.value, 1);
  // The conflict is gone once qb names its own upstream.
  store.envs.set('qb', env('qb', 1, services({ web: svc(), api: svc() })));
  await r2.reconcile('qb');
  await r2.reconcile('qb');
  assert.equal(store.envStatus.get('qb')?.conditions.find((c) => c.type === 'RouteConflict'), undefined);
  assert.equal((await metrics.routeConflicts.get()).values[0]?.value, 0);
  assert.deepEqual(store.routes.get('qa-web'), owned);
});

test('a route write racing another owner is refused by the owner check and reported, not thrown', async () => {
  const { store, r } = setup();
  store.envs.set('qa', env('qa', 1, services({ web: svc() })));
  // Another environment takes the upstream between qa's read and its write.
  const getRoutes = store.getRoutes.bind(store);
  store.getRoutes = async (u: string[]) => {
    const out = await getRoutes(u);
    store.routes.set('qa-web', { upstream: 'qa-web', servers: ['10.9.9.9:80'], owner: { env: 'other', service: 'x' } });
    return out;
  };
  await r.reconcile('qa');
  assert.deepEqual(store.routes.get('qa-web')?.servers, ['10.9.9.9:80']);
  assert.equal(store.envStatus.get('qa')?.conditions.find((c) => c.type === 'RouteConflict')?.status, 'True');
});

test('a rolling update Swarm is still carrying out is Progressing, even with every replica running; Ready once it completes', async () => {
  const { swarm, store, r } = setup();
  store.envs.set('qa', env('qa', 2));
  await r.reconcile('qa');
  await r.reconcile('qa');
  assert.equal(store.envStatus.get('qa')?.phase, 'Ready');
  // Start-first: the old tasks keep running while the new ones start, so the count stays 2/2.
  swarm.services[0]!.updateStatus = { state: 'updating', message: 'update in progress', startedAt: '2030-01-01T00:00:05Z' };
  const during = await r.reconcile('qa');
  const st = store.envStatus.get('qa')!;
  assert.equal(st.phase, 'Progressing');
  assert.equal(st.services.web?.runningReplicas, 2);
  assert.equal(st.services.web?.updating, true);
  assert.match(st.conditions.find((c) => c.type === 'ServicesReady')!.message, /web: 2\/2 running, Swarm update in progress/);
  assert.equal(during.requeueAfterMs, 1_000, 'looked at again while Swarm works');
  swarm.services[0]!.updateStatus = { state: 'completed', message: 'update completed', startedAt: '2030-01-01T00:00:05Z' };
  await r.reconcile('qa');
  assert.equal(store.envStatus.get('qa')?.phase, 'Ready');
  assert.equal(store.envStatus.get('qa')?.services.web?.updating, undefined);
});

test('a converging environment is looked at again after half the time it has converged, between 1 and 2 s', async () => {
  const { swarm, store, r, now } = setup();
  store.envs.set('qa', env('qa', 2));
  swarm.unhealthyImages.add('10.77.0.1:5000/web:v1');
  const at = (s: number) => new Date(Date.parse('2030-01-01T00:00:00Z') + s * 1_000);
  const polls: (number | undefined)[] = [];
  for (const s of [0, 1, 2, 3, 10]) {
    now.t = at(s);
    polls.push((await r.reconcile('qa')).requeueAfterMs);
  }
  assert.equal(store.envStatus.get('qa')?.phase, 'Progressing', 'its tasks never ran');
  assert.deepEqual(polls, [1_000, 1_000, 1_000, 1_500, 2_000]);
});
