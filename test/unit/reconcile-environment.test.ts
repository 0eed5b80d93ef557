import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { AdapterError, InvalidInputError, environmentSchema, groupSchema, type Environment } from '../../src/api/index.js';
import { EnvironmentReconciler } from '../../src/reconcile/reconciler-environment.js';
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
  assert.equal(first.requeueAfterMs, 2_000, 'changed something: look again soon');
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

test('invalid spec → Failed, not thrown; missing group → Degraded; both re-checked slowly', async () => {
  const { store, r } = setup();
  store.invalid.set('bad', new InvalidInputError([{ path: 'spec.nodes', message: 'must be a whole number' }]));
  assert.deepEqual(await r.reconcile('bad'), { requeueAfterMs: 30_000 });
  assert.equal(store.envStatus.get('bad')?.phase, 'Failed');
  store.envs.set('orphan', env('orphan', 1, { group: 'nope' }));
  assert.deepEqual(await r.reconcile('orphan'), { requeueAfterMs: 30_000 });
  const st = store.envStatus.get('orphan')!;
  assert.equal(st.phase, 'Degraded');
  assert.equal(st.conditions.find((c) => c.type === 'Ready')?.reason, 'GroupNotFound');
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
