import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { environmentSchema, groupSchema, type Environment, type ResolvedImage } from '../../src/api/index.js';
import { EnvironmentReconciler } from '../../src/reconcile/reconciler-environment.js';
import { mergeResolutions, nextResolutionInMs, pinEnvironment, resolutionKey, resolutionsDue } from '../../src/reconcile/releases/pinning.js';
import { FakeResolver } from '../support/fake-resolver.js';
import { FakeStore } from '../support/fake-store.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';

const log = pino({ level: 'silent' });
const IMAGE = '10.77.0.1:5000/web:v1';
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1_000);
const D = (c: string) => `sha256:${c.repeat(64)}`;

function env(services: Record<string, unknown> = { web: { image: IMAGE, replicas: 2, ports: [{ target: 8080 }] } }, generation = 1): Environment {
  return environmentSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name: 'qa', generation }, spec: { group: 'g', nodes: 1, services } });
}
const web = (e: Environment) => e.spec.services.web!;
const record = (e: Environment, digest: string, s = 0): ResolvedImage => ({ ref: web(e).image, digest, specHash: resolutionKey(web(e)), resolvedAt: at(s).toISOString() });

test('a tag is due once per spec change; replicas are not a change; a digest in the spec is never looked up', () => {
  const e = env();
  assert.deepEqual(resolutionsDue(e.spec.services, undefined, T0), ['web']);
  const known = { web: record(e, D('a')) };
  assert.deepEqual(resolutionsDue(e.spec.services, known, at(3600)), [], 'resolved for this spec: not again');
  const scaled = env({ web: { image: IMAGE, replicas: 5, ports: [{ target: 8080 }] } });
  assert.deepEqual(resolutionsDue(scaled.spec.services, known, T0), [], 'resizing is not a release');
  const changed = env({ web: { image: IMAGE, replicas: 2, ports: [{ target: 8080 }], environment: { A: 1 } } });
  assert.deepEqual(resolutionsDue(changed.spec.services, known, T0), ['web'], 'any other change resolves the tag again');
  const pinned = env({ web: { image: `${IMAGE}@${D('b')}` } });
  assert.deepEqual(resolutionsDue(pinned.spec.services, undefined, T0), []);
  assert.equal(web(pinEnvironment(pinned, {})).image, `${IMAGE}@${D('b')}`);
});

test('track: due again when its period ran out; the requeue asks for that moment', () => {
  const e = env({ web: { image: IMAGE, track: '30s' } });
  const known = { web: record(e, D('a'), 0) };
  assert.deepEqual(resolutionsDue(e.spec.services, known, at(29)), []);
  assert.equal(nextResolutionInMs(e.spec.services, known, at(29)), 1_000);
  assert.deepEqual(resolutionsDue(e.spec.services, known, at(30)), ['web']);
  assert.equal(nextResolutionInMs(env().spec.services, { web: record(env(), D('a')) }, at(30)), undefined, 'untracked: no requeue');
});

test('merge: a failure with no digest for the spec blocks; a failed refresh keeps the old digest (stale)', () => {
  const e = env({ web: { image: IMAGE, track: '30s' }, api: { image: '10.77.0.1:5000/api:v9' } });
  const known = { web: record(e, D('a')), gone: { ...record(e, D('c')) } };
  const r = mergeResolutions(e.spec.services, known, { web: { error: 'down' }, api: { error: 'down' } }, at(60));
  assert.deepEqual(r.blocking.map((b) => b.service), ['api']);
  assert.deepEqual(r.stale.map((b) => b.service), ['web']);
  assert.deepEqual(Object.keys(r.images), ['web'], 'a service gone from the spec loses its record');
  assert.equal(r.images.web?.digest, D('a'));
  const ok = mergeResolutions(e.spec.services, known, { web: { digest: D('b') }, api: { digest: D('d') } }, at(60));
  assert.equal(ok.images.web?.resolvedAt, at(60).toISOString());
  assert.equal(web(pinEnvironment(e, ok.images)).image, `${IMAGE}@${D('b')}`);
});

function setup(spec?: Record<string, unknown>) {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2)]);
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  store.envs.set('qa', env(spec));
  const registry = new FakeResolver();
  const now = { t: T0 };
  const r = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, images: registry, now: () => now.t });
  const running = () => swarm.services.find((s) => s.name === 'qa_web')?.image;
  return { swarm, store, registry, r, now, running };
}

test('Swarm runs repo:tag@digest; status shows it; converged passes and a restart do not ask the registry again', async () => {
  const { swarm, store, registry, r, running } = setup();
  const d1 = registry.push(IMAGE, '1');
  await r.reconcile('qa');
  await r.reconcile('qa');
  assert.equal(running(), `${IMAGE}@${d1}`);
  const st = store.envStatus.get('qa')!;
  assert.equal(st.phase, 'Ready');
  assert.equal(st.services.web?.image, `${IMAGE}@${d1}`);
  assert.equal(st.images?.web?.digest, d1);
  registry.push(IMAGE, '2');
  await r.reconcile('qa');
  const restarted = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, images: registry, now: () => T0 });
  await restarted.reconcile('qa');
  assert.deepEqual(registry.lookups, [IMAGE], 'one lookup for one spec, whatever the passes or restarts');
  assert.equal(running(), `${IMAGE}@${d1}`, 'a tag moved under an untracked service changes nothing');
});

test('track: a moved tag rolls out at the next period; the requeue is the period', async () => {
  const { store, registry, r, now, running } = setup({ web: { image: IMAGE, replicas: 1, track: '30s' } });
  registry.push(IMAGE, '1');
  await r.reconcile('qa');
  const settled = await r.reconcile('qa');
  assert.equal(settled.requeueAfterMs, 30_000);
  const d2 = registry.push(IMAGE, '2');
  now.t = at(15);
  await r.reconcile('qa');
  assert.notEqual(running(), `${IMAGE}@${d2}`, 'not before its period');
  now.t = at(30);
  await r.reconcile('qa');
  assert.equal(running(), `${IMAGE}@${d2}`);
  assert.equal(store.envStatus.get('qa')?.images?.web?.digest, d2);
});

test('ImageUnresolved: an unknown tag or a down registry changes nothing that runs', async () => {
  const { swarm, store, registry, r, running } = setup();
  const d1 = registry.push(IMAGE, '1');
  await r.reconcile('qa');
  await r.reconcile('qa');
  const writes = swarm.calls.filter((c) => !c.startsWith('list')).length;
  store.envs.set('qa', env({ web: { image: '10.77.0.1:5000/web:v404', replicas: 3, ports: [{ target: 8080 }] } }, 2));
  assert.deepEqual(await r.reconcile('qa'), { requeueAfterMs: 10_000 });
  const st = store.envStatus.get('qa')!;
  assert.equal(st.phase, 'Degraded');
  assert.equal(st.observedGeneration, 1, 'berth has not acted on this spec');
  assert.match(st.conditions.find((c) => c.type === 'ImageUnresolved')?.message ?? '', /web: resolve 10\.77\.0\.1:5000\/web:v404: HTTP 404/);
  assert.equal(st.images?.web?.digest, d1, 'the known digest is kept');
  assert.equal(swarm.calls.filter((c) => !c.startsWith('list')).length, writes, 'no Swarm write, not even the resize');
  assert.equal(running(), `${IMAGE}@${d1}`);
  registry.push('10.77.0.1:5000/web:v404', '4');
  await r.reconcile('qa');
  await r.reconcile('qa');
  assert.equal(store.envStatus.get('qa')?.phase, 'Ready');
  assert.equal(store.envStatus.get('qa')?.conditions.some((c) => c.type === 'ImageUnresolved'), false);
});

test('a tracked refresh that fails keeps the running digest: ImageUnresolved, still Ready', async () => {
  const { store, registry, r, now, running } = setup({ web: { image: IMAGE, replicas: 1, track: '30s' } });
  const d1 = registry.push(IMAGE, '1');
  await r.reconcile('qa');
  await r.reconcile('qa');
  registry.down = true;
  now.t = at(30);
  await r.reconcile('qa');
  const st = store.envStatus.get('qa')!;
  assert.equal(st.phase, 'Ready');
  assert.equal(st.conditions.find((c) => c.type === 'ImageUnresolved')?.reason, 'TrackingLookupFailed');
  assert.equal(running(), `${IMAGE}@${d1}`);
});

test('a registry notification re-resolves a tracked tag at once, long before its period; the requeue stays the period', async () => {
  const { store, registry, swarm, now, running } = setup({ web: { image: IMAGE, replicas: 1, track: '1h' } });
  const pushed = new Map<string, string>();
  const r = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, images: registry, now: () => now.t, pushedDigest: (ref) => pushed.get(ref) });
  const d1 = registry.push(IMAGE, '1');
  await r.reconcile('qa');
  await r.reconcile('qa');
  const d2 = registry.push(IMAGE, '2');
  now.t = at(5);
  await r.reconcile('qa');
  assert.equal(running(), `${IMAGE}@${d1}`, 'no notification: the period holds');
  pushed.set(IMAGE, d2);
  const after = await r.reconcile('qa');
  assert.equal(running(), `${IMAGE}@${d2}`);
  assert.equal(store.envStatus.get('qa')?.images?.web?.digest, d2);
  assert.ok((after.requeueAfterMs ?? 0) >= 1_000, 'a notification does not make the reconcile spin: the poll of a converging environment');
  const lookups = registry.lookups.length;
  await r.reconcile('qa');
  assert.equal(registry.lookups.length, lookups, 'the notified digest is the one run: not asked again');
  pushed.set(IMAGE, D('9'));
  await r.reconcile('qa');
  assert.equal(registry.lookups.length, lookups + 1, 'a notification the registry does not confirm costs one look-up per pass');
  assert.equal(running(), `${IMAGE}@${d2}`, 'and changes nothing');
});

test('an untracked tag ignores notifications: it moves only with its spec', async () => {
  const { store, registry, swarm, now, running } = setup();
  const r = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, images: registry, now: () => now.t, pushedDigest: () => D('2') });
  const d1 = registry.push(IMAGE, '1');
  await r.reconcile('qa');
  registry.push(IMAGE, '2');
  await r.reconcile('qa');
  assert.equal(running(), `${IMAGE}@${d1}`);
  assert.deepEqual(registry.lookups, [IMAGE]);
});

test('job images are pinned like services: resolved once per job spec change, run by digest, tracked, shown in status', async () => {
  const JOB_IMAGE = '10.77.0.1:5000/batch:v1';
  const { store, registry, swarm, r, now } = setup();
  const d1 = registry.push(IMAGE, '1');
  const j1 = registry.push(JOB_IMAGE, 'b');
  const withJob = (job: Record<string, unknown>, generation: number) => {
    const e = env(undefined, generation);
    return environmentSchema.parse({ ...e, spec: { ...e.spec, jobs: { report: { image: JOB_IMAGE, schedule: '@every 10s', ...job } } } });
  };
  store.envs.set('qa', withJob({}, 1));
  await r.reconcile('qa');
  await r.reconcile('qa');
  const st = store.envStatus.get('qa')!;
  assert.equal(st.jobImages?.report?.digest, j1);
  assert.equal(st.images?.web?.digest, d1);
  now.t = at(10);
  await r.reconcile('qa');
  const run = () => swarm.services.filter((s) => s.labels['berth.job'] === 'report').sort((a, b) => a.name.localeCompare(b.name)).at(-1);
  assert.equal(run()?.image, `${JOB_IMAGE}@${j1}`, 'the run starts the pinned digest');
  const j2 = registry.push(JOB_IMAGE, 'c');
  const lookups = registry.lookups.length;
  now.t = at(11);
  await r.reconcile('qa');
  assert.equal(registry.lookups.length, lookups, 'untracked: not asked again');
  store.envs.set('qa', withJob({ track: '30s' }, 2));
  await r.reconcile('qa');
  assert.equal(store.envStatus.get('qa')?.jobImages?.report?.digest, j2, 'a job spec change resolves again');
  store.envs.set('qa', withJob({ track: '30s', image: '10.77.0.1:5000/batch:v404' }, 3));
  await r.reconcile('qa');
  assert.match(store.envStatus.get('qa')!.conditions.find((c) => c.type === 'ImageUnresolved')?.message ?? '', /job report: resolve 10\.77\.0\.1:5000\/batch:v404: HTTP 404/);
});
