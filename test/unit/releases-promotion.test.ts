import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { environmentSchema, groupSchema, type Environment, type PromotedRelease, type ReleaseRecord } from '../../src/api/index.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { EnvironmentReconciler } from '../../src/reconcile/reconciler-environment.js';
import { decidePromotion, promotedImages, type PromotionInput } from '../../src/reconcile/releases/promotion.js';
import { HISTORY_LIMIT, nextRelease, previousRelease, releaseId } from '../../src/reconcile/releases/release.js';
import { metricValue } from '../support/fake-runtime.js';
import { FakeResolver } from '../support/fake-resolver.js';
import { FakeStore } from '../support/fake-store.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';

const log = pino({ level: 'silent' });
const REPO = '10.77.0.1:5000/web';
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1_000);
const D = (c: string) => `sha256:${c.repeat(64)}`;

test('release id: the digests per service, whatever repository or tag names them', () => {
  assert.equal(releaseId({ web: `${REPO}:qa@${D('a')}` }), releaseId({ web: `${REPO}@${D('a')}` }));
  assert.notEqual(releaseId({ web: `${REPO}@${D('a')}` }), releaseId({ web: `${REPO}@${D('b')}` }));
  assert.notEqual(releaseId({ web: `${REPO}@${D('a')}` }), releaseId({ api: `${REPO}@${D('a')}` }));
  assert.match(releaseId({ web: `${REPO}@${D('a')}` }), /^[0-9a-f]{10}$/);
});

test('history: a release is recorded when Ready with new images, newest first, at most 20; not while Progressing', () => {
  let s = nextRelease(undefined, { web: `${REPO}@${D('1')}` }, false, undefined, T0);
  assert.deepEqual(s, {}, 'not Ready: no release');
  s = nextRelease(s, { web: `${REPO}@${D('1')}` }, true, undefined, T0);
  assert.equal(s.release?.readySince, T0.toISOString());
  assert.deepEqual(nextRelease(s, { web: `${REPO}@${D('1')}` }, true, undefined, at(9)), s, 'the same release keeps its Ready since');
  assert.deepEqual(nextRelease(s, { web: `${REPO}@${D('2')}` }, false, undefined, at(9)), s, 'a rollout in progress keeps the last release');
  for (let i = 0; i < 25; i++) s = nextRelease(s, { web: `${REPO}@${D((i % 16).toString(16))}${''}` }, true, undefined, at(i + 10));
  assert.ok(s.history!.length <= HISTORY_LIMIT);
  assert.equal(s.history![0]!.id, s.release!.id);
  assert.equal(new Set(s.history!.map((h) => h.id)).size, s.history!.length, 'a release returned to moves to the front, not twice');
  assert.equal(previousRelease(s)?.id, s.history![1]!.id);
});

test('a promoted release carries who approved it', () => {
  const promoted: PromotedRelease = { release: 'x', images: { web: `${REPO}@${D('2')}` }, from: 'qa', at: T0.toISOString(), approvedBy: 'ana', approvedAt: T0.toISOString() };
  const s = nextRelease(undefined, { web: `${REPO}@${D('2')}`, db: 'db:1' }, true, promoted, at(5));
  assert.equal(s.release?.approvedBy, 'ana');
  assert.equal(s.release?.from, 'qa');
  assert.equal(nextRelease(undefined, { web: `${REPO}@${D('3')}` }, true, promoted, at(5)).release?.approvedBy, undefined);
});

const upstreamRelease = (images: Record<string, string>, readySince: Date): ReleaseRecord => ({ id: releaseId(images), images, readySince: readySince.toISOString() });
const QA_V2 = { web: `${REPO}:qa@${D('2')}`, worker: `${REPO}:w@${D('9')}` };

function input(over: Partial<PromotionInput> = {}): PromotionInput {
  return {
    env: 'prod',
    spec: { from: 'qa', soak: '5s', approval: 'manual' },
    own: { web: `${REPO}:v1`, db: 'db:1' },
    upstream: { phase: 'Ready', release: upstreamRelease(QA_V2, T0) },
    promoted: undefined,
    approval: undefined,
    rollback: undefined,
    now: at(10),
    ...over,
  };
}

test('promotion gates in order: upstream Ready, soak, verify, approval', () => {
  const id = releaseId(QA_V2);
  assert.equal(decidePromotion(input({ upstream: undefined })).pending?.gate, 'upstream');
  assert.equal(decidePromotion(input({ upstream: { phase: 'Progressing', release: upstreamRelease(QA_V2, T0) } })).pending?.gate, 'upstream');
  const soaking = decidePromotion(input({ now: at(3) }));
  assert.deepEqual([soaking.pending?.gate, soaking.pending?.retryInMs], ['soak', 2_000]);
  const verify = { http: { path: '/healthz', expect: 200 } };
  const toVerify = decidePromotion(input({ spec: { from: 'qa', soak: '5s', approval: 'manual', verify } }));
  assert.deepEqual([toVerify.pending?.gate, toVerify.verify], ['verify', true]);
  const failed = decidePromotion(input({ spec: { from: 'qa', soak: '5s', approval: 'manual', verify }, verified: { ok: false, message: 'HTTP 500' } }));
  assert.deepEqual([failed.pending?.gate, failed.verify, failed.promote], ['verify', undefined, undefined]);
  const waiting = decidePromotion(input({ spec: { from: 'qa', soak: '5s', approval: 'manual', verify }, verified: { ok: true, message: '' } }));
  assert.equal(waiting.pending?.gate, 'approval');
  assert.match(waiting.pending!.message, new RegExp(`berth approve env prod --release ${id}`));
  assert.deepEqual(waiting.images, {}, 'nothing promoted yet: the spec images run');
  assert.equal(decidePromotion(input({ approval: { release: 'other', by: 'x', at: '' } })).pending?.gate, 'approval', 'an approval of another release does not count');
});

test('approved: the upstream digests in our own repository, matched by name; a service the upstream lacks keeps its image', () => {
  const id = releaseId(QA_V2);
  const d = decidePromotion(input({ approval: { release: id, by: 'ana', at: 'then' } }));
  assert.equal(d.pending, undefined);
  assert.deepEqual(d.promote, { release: id, images: { web: `${REPO}@${D('2')}` }, from: 'qa', at: at(10).toISOString(), approvedBy: 'ana', approvedAt: 'then' });
  assert.deepEqual(d.images, { web: `${REPO}@${D('2')}` });
  const auto = decidePromotion(input({ spec: { from: 'qa', soak: '0s', approval: 'auto' }, now: T0 }));
  assert.equal(auto.promote?.approvedBy, 'auto');
  assert.deepEqual(promotedImages({ web: 'web:v2' }, { web: 'web:v1' }), { web: 'web:v2' }, 'no digest (no registry): the upstream image as it ran');
});

test('promoted already: nothing pending; a rollback pins its images until the next promotion', () => {
  const id = releaseId(QA_V2);
  const promoted = decidePromotion(input({ approval: { release: id, by: 'ana', at: 'then' } })).promote!;
  const steady = decidePromotion(input({ promoted }));
  assert.deepEqual([steady.pending, steady.promote, steady.images], [undefined, undefined, promoted.images]);
  const rollback = { to: 'r1', images: { web: `${REPO}@${D('1')}` }, from: id, by: 'bo', at: 'now' };
  const rolled = decidePromotion(input({ promoted, rollback }));
  assert.deepEqual(rolled.images, rollback.images);
  assert.equal(rolled.rollback, rollback);
  const v3 = { web: `${REPO}:qa@${D('3')}` };
  const next = decidePromotion(input({ promoted, rollback, upstream: { phase: 'Ready', release: upstreamRelease(v3, T0) }, approval: { release: releaseId(v3), by: 'ana', at: 'x' } }));
  assert.deepEqual(next.images, { web: `${REPO}@${D('3')}` }, 'the next promotion ends the rollback');
  const stale = decidePromotion(input({ promoted: next.promote!, rollback, upstream: { phase: 'Ready', release: upstreamRelease(v3, T0) } }));
  assert.equal(stale.rollback, undefined, 'a rollback from an older promotion no longer holds');
});

function prodEnv(): Environment {
  return environmentSchema.parse({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: 'prod', generation: 1 },
    spec: { group: 'g', nodes: 1, promotion: { from: 'qa', soak: '5s', approval: 'manual', markTag: 'tested' }, services: { web: { image: `${REPO}:v1`, replicas: 1 } } },
  });
}

test('reconciler: prod waits with PromotionPending, approve → runs exactly the upstream digest, tag marked, metrics', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  store.envs.set('prod', prodEnv());
  const registry = new FakeResolver();
  const d1 = registry.push(`${REPO}:v1`, '1');
  const tagged: string[] = [];
  const metrics = createMetrics();
  const now = { t: T0 };
  const r = new EnvironmentReconciler({
    swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, releases: store, log, metrics, images: registry, now: () => now.t,
    tagger: { tagDigest: async (repo, digest, tag) => void tagged.push(`${repo}@${digest} as ${tag}`) },
  });
  const running = () => swarm.services.find((s) => s.name === 'prod_web')?.image;
  const cond = (type: string) => store.envStatus.get('prod')?.conditions.find((c) => c.type === type);

  await r.reconcile('prod');
  assert.equal((await r.reconcile('prod')).requeueAfterMs, 5_000, 'the upstream is polled');
  assert.equal(running(), `${REPO}:v1@${d1}`);
  assert.equal(cond('PromotionPending')?.reason, 'WaitingForUpstream');
  const first = store.envStatus.get('prod')!.release!;
  assert.equal(first.images.web, `${REPO}:v1@${d1}`);

  const qaRelease = upstreamRelease({ web: `${REPO}:qa@${D('2')}` }, T0);
  store.envStatus.set('qa', { ...store.envStatus.get('prod')!, phase: 'Ready', release: qaRelease });
  now.t = at(2);
  assert.equal((await r.reconcile('prod')).requeueAfterMs, 3_000, 'the soak ends in 3 s');
  assert.equal(cond('PromotionPending')?.reason, 'Soaking');
  now.t = at(6);
  await r.reconcile('prod');
  assert.equal(cond('PromotionPending')?.reason, 'WaitingForApproval');
  assert.equal(running(), `${REPO}:v1@${d1}`, 'nothing moves before approval');

  store.approvals.set('prod', { release: qaRelease.id, by: 'ana', at: at(7).toISOString() });
  now.t = at(8);
  await r.reconcile('prod');
  await r.reconcile('prod');
  assert.equal(running(), `${REPO}@${D('2')}`, 'exactly the upstream digest');
  assert.deepEqual(tagged, [`${REPO}@${D('2')} as tested`]);
  const st = store.envStatus.get('prod')!;
  assert.equal(cond('PromotionPending'), undefined);
  assert.equal(cond('Promoted')?.reason, 'Promoted');
  assert.equal(st.release?.id, qaRelease.id, 'the same digests: the same release id as qa');
  assert.equal(st.release?.approvedBy, 'ana');
  assert.deepEqual(st.history?.map((h) => h.id), [qaRelease.id, first.id]);
  assert.equal(await metricValue(metrics.promotionsTotal, { env: 'prod', result: 'promoted' }), 1);
  assert.equal(await metricValue(metrics.releaseInfo, { env: 'prod', release: qaRelease.id }), 1);
  assert.equal((await metrics.releaseInfo.get()).values.some((v) => v.labels.release === first.id), false, 'the old release is no longer reported');
  assert.equal((await metrics.promotionLeadTime.get()).values.find((v) => v.metricName === 'berth_promotion_lead_time_seconds_sum')?.value, 8, 'qa Ready at 0 s, promoted at 8 s');

  store.rollbacks.set('prod', { to: first.id, images: first.images, from: qaRelease.id, by: 'bo', at: at(9).toISOString() });
  await r.reconcile('prod');
  await r.reconcile('prod');
  assert.equal(running(), `${REPO}:v1@${d1}`, 'rolled back to the previous release digests');
  assert.equal(cond('Promoted')?.reason, 'RolledBack');
  assert.equal(store.envStatus.get('prod')!.release?.id, first.id);
});

test('chains: dev → qa → prod with auto approval run the same release id, each in its own repository', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  const mk = (name: string, image: string, from?: string) =>
    environmentSchema.parse({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Environment',
      metadata: { name, generation: 1 },
      spec: { group: 'g', nodes: 1, ...(from ? { promotion: { from, approval: 'auto' } } : {}), services: { web: { image } } },
    });
  store.envs.set('dev', mk('dev', `${REPO}:latest`));
  store.envs.set('qa', mk('qa', 'qa.registry:5000/web:v0', 'dev'));
  store.envs.set('prod', mk('prod', 'prod.registry:5000/web:v0', 'qa'));
  const registry = new FakeResolver();
  const dev = registry.push(`${REPO}:latest`, '7');
  registry.push('qa.registry:5000/web:v0', '0');
  registry.push('prod.registry:5000/web:v0', '0');
  const r = new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, releases: store, log, images: registry, now: () => T0 });
  for (const env of ['dev', 'qa', 'prod']) for (let i = 0; i < 3; i++) await r.reconcile(env);
  const image = (env: string) => swarm.services.find((s) => s.name === `${env}_web`)?.image;
  assert.equal(image('qa'), `qa.registry:5000/web@${dev}`);
  assert.equal(image('prod'), `prod.registry:5000/web@${dev}`);
  const ids = ['dev', 'qa', 'prod'].map((e) => store.envStatus.get(e)?.release?.id);
  assert.equal(new Set(ids).size, 1, `one release id across the chain: ${ids.join(', ')}`);
  assert.equal(store.envStatus.get('prod')?.release?.from, 'qa');
});
