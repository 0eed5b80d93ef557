import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { environmentSchema, groupSchema, type Environment, type RollbackRequest } from '../../src/api/index.js';
import { describeEnvironment } from '../../src/cli/describe.js';
import { EnvironmentReconciler } from '../../src/reconcile/reconciler-environment.js';
import { activeSpecRollback, specImages } from '../../src/reconcile/releases/rollback.js';
import { FakeResolver } from '../support/fake-resolver.js';
import { FakeStore } from '../support/fake-store.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';

const log = pino({ level: 'silent' });
const IMAGE = '10.77.0.1:5000/web:latest';
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1_000);

function env(web: Record<string, unknown> = {}, generation = 1, extra: Record<string, unknown> = {}): Environment {
  return environmentSchema.parse({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: 'qa', generation },
    spec: { group: 'g', nodes: 1, services: { web: { image: IMAGE, replicas: 1, track: '30s', ...web } }, ...extra },
  });
}

test('a rollback without spec.promotion holds while the spec names the same images: replicas do not end it, an image edit or a new service does', () => {
  const e = env();
  const request: RollbackRequest = { to: 'r1', images: { web: `${IMAGE}@sha256:${'1'.repeat(64)}` }, from: 'r2', specImages: specImages(e), by: 'bo', at: 'x' };
  assert.equal(activeSpecRollback(e, request), request);
  assert.equal(activeSpecRollback(env({ replicas: 3 }, 2), request), request);
  assert.equal(activeSpecRollback(env({ image: '10.77.0.1:5000/web:v9' }, 2), request), undefined);
  const twoServices = environmentSchema.parse({ ...e, spec: { ...e.spec, services: { ...e.spec.services, api: { image: IMAGE } } } });
  assert.equal(activeSpecRollback(twoServices, request), undefined);
  const { specImages: _s, ...promotionRequest } = request;
  assert.equal(activeSpecRollback(e, promotionRequest), undefined, 'a request made for spec.promotion does not pin here');
  const promoted = env({}, 1, { promotion: { from: 'dev' } });
  assert.equal(activeSpecRollback(promoted, request), undefined, 'with spec.promotion, promotion.ts decides');
});

test('berth rollback without spec.promotion: the earlier release runs, a tracked tag moving does not end it, the next image change in the spec does', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  store.envs.set('qa', env());
  const registry = new FakeResolver();
  const now = { t: T0 };
  const r = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, releases: store, log, images: registry, now: () => now.t });
  const running = () => swarm.services.find((s) => s.name === 'qa_web')?.image;
  const status = () => store.envStatus.get('qa')!;
  const twice = async () => {
    await r.reconcile('qa');
    await r.reconcile('qa');
  };

  const d1 = registry.push(IMAGE, '1');
  await twice();
  const first = status().release!;
  registry.push(IMAGE, '2');
  now.t = at(30);
  await twice();
  const second = status().release!;
  assert.notEqual(first.id, second.id);
  assert.deepEqual(status().history?.map((h) => h.id), [second.id, first.id]);

  store.rollbacks.set('qa', { to: first.id, images: first.images, from: second.id, specImages: specImages(store.envs.get('qa')!), by: 'bo', at: at(31).toISOString() });
  now.t = at(31);
  await twice();
  assert.equal(running(), `${IMAGE}@${d1}`, 'the earlier release runs');
  assert.equal(status().release?.id, first.id);
  assert.equal(status().rollback?.to, first.id);
  const pinned = status().conditions.find((c) => c.type === 'Pinned');
  assert.equal(pinned?.reason, 'RolledBack');
  assert.match(pinned?.message ?? '', /until the spec's images change \(web=10\.77\.0\.1:5000\/web:latest\)/);
  assert.match(describeEnvironment(store.envs.get('qa')!, status(), now.t), /Rolled Back: +to release \w+ from \w+ by bo .*pinned until the spec's images change/);

  registry.push(IMAGE, '3');
  now.t = at(90);
  await twice();
  store.envs.set('qa', env({ replicas: 2 }, 2));
  await twice();
  assert.equal(running(), `${IMAGE}@${d1}`, 'neither the tracked tag moving nor a resize ends the pin');

  const v9 = registry.push('10.77.0.1:5000/web:v9', '9');
  store.envs.set('qa', env({ replicas: 2, image: '10.77.0.1:5000/web:v9' }, 3));
  await twice();
  assert.equal(running(), `10.77.0.1:5000/web:v9@${v9}`, 'the spec changed its image: the pin ends');
  assert.equal(status().rollback, undefined);
  assert.equal(status().conditions.some((c) => c.type === 'Pinned'), false);
});
