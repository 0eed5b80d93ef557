import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { environmentSchema, groupSchema, type Environment } from '../../src/api/index.js';
import type { Color } from '../../src/api/status.js';
import type { ProbeResult } from '../../src/reconcile/bluegreen/index.js';
import { EnvironmentReconciler } from '../../src/reconcile/reconciler-environment.js';
import { FakeStore } from '../support/fake-store.js';
import { LABEL_ENV } from '../../src/swarm/labels.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';
import { legacySpecHash } from '../support/legacy-spec-hash.js';
import { createMetrics } from '../../src/metrics/registry.js';

const log = pino({ level: 'silent' });
const img = (tag: string) => `10.77.0.1:5000/web:${tag}`;

function env(tag: string, strategy: Record<string, unknown> = {}, replicas = 2): Environment {
  return environmentSchema.parse({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: 'bg', generation: 1 },
    spec: {
      group: 'g',
      nodes: Math.max(2, replicas), // maxPerNode 1: a node per replica
      services: {
        web: {
          image: img(tag),
          replicas,
          ports: [{ target: 8080 }],
          placement: { maxPerNode: 1 },
          strategy: { type: 'blueGreen', drain: '10s', progressDeadline: '40s', ...strategy },
        },
      },
    },
  });
}

function setup(opts: { proxyWaitMs?: number } = {}) {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  swarm.unhealthyImages.add(img('broken'));
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  const clock = { t: Date.parse('2030-01-01T00:00:00Z') };
  const now = () => new Date(clock.t);
  const probes: { color: Color; endpoints: string[] }[] = [];
  const failProbe = new Set<Color>();
  const probe = async (color: Color, endpoints: string[]): Promise<ProbeResult> => {
    probes.push({ color, endpoints });
    return { color, endpoints, ok: !failProbe.has(color), at: now().toISOString(), ...(failProbe.has(color) ? { message: 'HTTP 500' } : {}) };
  };
  const metrics = createMetrics();
  const make = () =>
    new EnvironmentReconciler({ swarm, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, proxies: store, log, now, probe, pollMs: 1_000, metrics, ...(opts.proxyWaitMs ? { proxyWaitMs: opts.proxyWaitMs } : {}) });
  let r = make();
  /** Reconciles like the work queue would: again after the requeue it asks for (time moves by it). */
  const run = async (passes: number, stop?: () => boolean) => {
    for (let i = 0; i < passes; i++) {
      const res = await r.reconcile('bg');
      if (stop?.()) return res;
      if (res.requeueAfterMs === undefined) return res;
      clock.t += Math.min(res.requeueAfterMs, 60_000);
    }
    return undefined;
  };
  const service = (color: Color) => swarm.services.find((s) => s.name === `bg_web_${color}`);
  const status = () => store.envStatus.get('bg')!;
  return { swarm, store, clock, probes, failProbe, run, service, status, metrics, restart: () => (r = make()) };
}

/** The route of an environment whose tasks run on its nodes: each held node's address, port 30000. */
const heldEndpoints = (swarm: FakeSwarm) => swarm.nodes.filter((n) => n.labels[LABEL_ENV] === 'bg').map((n) => `${n.addr}:30000`).sort();

test('first deploy: blue comes up and is routed; converged passes write nothing', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1'));
  const res = await t.run(10);
  assert.deepEqual(res, {}, 'converged: nothing to requeue');
  assert.deepEqual(t.swarm.services.map((s) => s.name), ['bg_web_blue']);
  const { cutover, ...route } = t.store.routes.get('bg-web')!;
  assert.deepEqual(route, { upstream: 'bg-web', servers: heldEndpoints(t.swarm), color: 'blue', owner: { env: 'bg', service: 'web' } });
  assert.deepEqual(cutover, { to: 'blue', at: '2030-01-01T00:00:00.000Z', proxies: [], revision: '101' }, 'the switch wrote its record in the same write');
  assert.equal(t.store.routeWrites.length, 1, 'one route write: the first cutover');
  const st = t.status();
  assert.equal(st.phase, 'Ready');
  assert.equal(st.services.web?.activeColor, 'blue');
  assert.equal(st.services.web?.pending, undefined);
  assert.equal(st.services.web?.cutovers?.length, 1);
  assert.equal(st.conditions.find((c) => c.type === 'CutoverReady')?.status, 'True');
  const calls = t.swarm.calls.length;
  await t.run(1);
  assert.deepEqual(t.swarm.calls.slice(calls).filter((c) => !c.startsWith('list')), []);
  assert.equal(t.store.routeWrites.length, 1);
});

test('image change: green created, probed, cut over in one setRoute, blue scaled to 0 after drain', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1'));
  await t.run(10);
  t.store.envs.set('bg', env('v2'));
  const writesBefore = t.store.routeWrites.length;

  // Pass 1: green is created; the route does not move.
  const first = await t.run(1, () => true);
  assert.equal(first?.requeueAfterMs, 0, 'requeued at once after a Swarm change');
  assert.equal(t.service('green')?.image, img('v2'));
  assert.equal(t.store.routes.get('bg-web')?.color, 'blue');
  assert.equal(t.status().phase, 'Progressing');
  assert.equal(t.status().services.web?.pending?.color, 'green');

  // Pass 2: green is healthy → probe → cutover, within the same reconcile.
  const cut = await t.run(1, () => true);
  assert.deepEqual(t.probes.map((p) => p.color), ['green']);
  const writes = t.store.routeWrites.slice(writesBefore);
  assert.equal(writes.length, 1, 'the cutover is ONE route write');
  assert.equal(writes[0]!.color, 'green');
  assert.deepEqual(writes[0]!.servers, t.probes[0]!.endpoints, 'the route holds exactly the probed endpoints');
  assert.ok(writes[0]!.servers.length > 0);
  assert.equal(t.service('blue')?.replicas, 2, 'blue keeps running while it drains');
  assert.ok(cut?.requeueAfterMs !== undefined && cut.requeueAfterMs > 0 && cut.requeueAfterMs <= 10_000, 'requeued by the end of the drain');
  const st = t.status();
  assert.equal(st.services.web?.activeColor, 'green');
  assert.equal(st.services.web?.image, img('v2'));
  assert.equal(st.services.web?.pending, undefined);
  const rec = st.services.web?.cutovers?.at(-1);
  assert.equal(rec?.result, 'succeeded');
  assert.equal(rec?.fromImage, img('v1'));
  assert.equal(rec?.toImage, img('v2'));

  // After the drain: blue scaled to 0 (kept), Ready, the route untouched.
  await t.run(30);
  assert.equal(t.service('blue')?.replicas, 0);
  assert.equal(t.service('blue')?.image, img('v1'), 'scaled, not rebuilt: ready for a roll-back');
  assert.equal(t.status().phase, 'Ready');
  assert.equal(t.store.routeWrites.length, writesBefore + 1);

  // Roll back by re-applying v1: blue comes back, probed, cut over.
  t.store.envs.set('bg', env('v1'));
  await t.run(20);
  assert.deepEqual(t.store.routes.get('bg-web')?.color, 'blue');
  assert.equal(t.service('green')?.replicas, 0);
  assert.equal(t.status().services.web?.cutovers?.length, 3);
});

test('a replica change without an image change needs no cutover', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1', {}, 1));
  await t.run(10);
  t.store.envs.set('bg', env('v1', {}, 2));
  await t.run(10);
  assert.equal(t.service('blue')?.replicas, 2);
  assert.equal(t.service('green'), undefined);
  assert.equal(t.store.routes.get('bg-web')?.servers.length, 2);
  assert.equal(t.probes.length, 0);
  assert.equal(t.status().phase, 'Ready');
});

test('resize 1 → 3: the live colour is updated in place (same spec hash), no second colour, no route colour change', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1', {}, 1));
  await t.run(10);
  const hash = t.service('blue')!.labels['berth.spec-hash'];
  const calls = t.swarm.calls.length;
  t.store.envs.set('bg', env('v1', {}, 3));
  await t.run(10);
  assert.equal(t.service('blue')?.replicas, 3);
  assert.equal(t.service('blue')?.labels['berth.spec-hash'], hash, 'the same version');
  assert.equal(t.service('green'), undefined, 'no second colour');
  assert.deepEqual(t.swarm.calls.slice(calls).filter((c) => c.endsWith('Service') && c !== 'inspectService'), ['updateService'], 'one in-place update');
  assert.equal(t.store.routes.get('bg-web')?.color, 'blue');
  assert.equal(t.store.routes.get('bg-web')?.servers.length, 3);
  assert.equal(t.status().services.web?.cutovers?.length, 1, 'no cutover');
});

test('resized while green waits for promotion: both colours reach the new size, then the promotion cuts over', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1', { autoPromote: false }, 2));
  await t.run(10);
  t.store.envs.set('bg', env('v2', { autoPromote: false }, 2));
  await t.run(30, () => t.status().services.web?.pending?.state === 'WaitingForPromotion');
  const since = t.status().services.web?.pending?.since;
  t.store.envs.set('bg', env('v2', { autoPromote: false }, 3));
  await t.run(10, () => t.store.routes.get('bg-web')?.servers.length === 3 && t.status().services.web?.pending?.state === 'WaitingForPromotion');
  assert.equal(t.service('blue')?.replicas, 3, 'the live colour follows');
  assert.equal(t.service('blue')?.image, img('v1'), 'and keeps its version');
  assert.equal(t.service('green')?.replicas, 3, 'the waiting colour follows');
  assert.equal(t.store.routes.get('bg-web')?.color, 'blue');
  assert.equal(t.store.routes.get('bg-web')?.servers.length, 3, 'the live route holds the new blue task');
  assert.equal(t.status().services.web?.pending?.since, since, 'the same attempt');
  t.store.promotions.set('bg/web', { color: 'green', image: img('v2') });
  await t.run(30);
  assert.equal(t.store.routes.get('bg-web')?.color, 'green');
  assert.equal(t.store.routes.get('bg-web')?.servers.length, 3);
  assert.equal(t.service('green')?.replicas, 3);
  assert.equal(t.service('blue')?.replicas, 0);
});

test('upgrade: colours labelled by an older berth (replicas in the hash) are left alone', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1'));
  await t.run(10);
  const blue = t.swarm.services.find((s) => s.name === 'bg_web_blue')!;
  blue.labels['berth.spec-hash'] = legacySpecHash(blue.spec);
  const calls = t.swarm.calls.length;
  await t.run(3);
  assert.deepEqual(t.swarm.calls.slice(calls).filter((c) => !c.startsWith('list')), []);
  assert.equal(t.service('green'), undefined);
  assert.equal(t.status().phase, 'Ready');
});

test('broken image: abandoned at the deadline, route never moves, condition and phase say why', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1'));
  await t.run(10);
  const route = structuredClone(t.store.routes.get('bg-web'));
  const writes = t.store.routeWrites.length;
  t.store.envs.set('bg', env('broken'));
  await t.run(5);
  assert.equal(t.status().phase, 'Progressing');
  await t.run(80, () => t.status().phase === 'Degraded');
  assert.deepEqual(t.store.routes.get('bg-web'), route, 'route unchanged');
  assert.equal(t.store.routeWrites.length, writes, 'never written');
  assert.equal(t.service('green')?.replicas, 0, 'the failed colour is scaled to 0');
  assert.equal(t.service('blue')?.replicas, 2, 'blue keeps serving');
  assert.equal(t.probes.length, 0, 'never healthy, so never probed');
  const st = t.status();
  assert.equal(st.phase, 'Degraded');
  const cond = st.conditions.find((c) => c.type === 'CutoverReady');
  assert.equal(cond?.reason, 'CutoverAbandoned');
  assert.match(cond!.message, /web:broken/);
  assert.match(cond!.message, /not healthy within 40s/);
  assert.match(cond!.message, /blue keeps serving/);
  assert.equal(st.conditions.find((c) => c.type === 'Ready')?.reason, 'CutoverAbandoned');
  assert.equal(st.services.web?.pending?.state, 'Abandoned');
  assert.equal(st.services.web?.cutovers?.at(-1)?.result, 'abandoned');
  assert.equal(st.services.web?.activeColor, 'blue');

  // Further passes stay put; a fixed spec rolls forward.
  await t.run(3);
  assert.equal(t.service('green')?.replicas, 0);
  t.store.envs.set('bg', env('v2'));
  await t.run(20);
  assert.equal(t.store.routes.get('bg-web')?.color, 'green');
  assert.equal(t.status().phase, 'Ready');
  assert.equal(t.status().conditions.find((c) => c.type === 'CutoverReady')?.status, 'True');
});

test('a failing pre-promotion probe never moves the route', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1'));
  await t.run(10);
  const writes = t.store.routeWrites.length;
  t.failProbe.add('green');
  t.store.envs.set('bg', env('v2'));
  await t.run(80, () => t.status().phase === 'Degraded');
  assert.equal(t.store.routeWrites.length, writes);
  assert.equal(t.store.routes.get('bg-web')?.color, 'blue');
  assert.match(t.status().conditions.find((c) => c.type === 'CutoverReady')!.message, /probe of green failed: HTTP 500/);
});

test('autoPromote false: green waits, healthy, until a promotion request exists', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1', { autoPromote: false }));
  await t.run(10);
  assert.equal(t.store.routes.get('bg-web')?.color, 'blue', 'the first deploy needs no promotion');
  t.store.envs.set('bg', env('v2', { autoPromote: false }));
  await t.run(30);
  assert.equal(t.store.routes.get('bg-web')?.color, 'blue');
  const st = t.status();
  assert.equal(st.services.web?.pending?.state, 'WaitingForPromotion');
  assert.equal(st.conditions.find((c) => c.type === 'CutoverReady')?.reason, 'WaitingForPromotion');
  assert.equal(st.phase, 'Progressing');
  assert.equal(t.service('green')?.replicas, 2);
  // A request for another image does nothing.
  t.store.promotions.set('bg/web', { color: 'green', image: img('v3') });
  await t.run(3);
  assert.equal(t.store.routes.get('bg-web')?.color, 'blue');
  t.store.promotions.set('bg/web', { color: 'green', image: img('v2') });
  await t.run(20);
  assert.equal(t.store.routes.get('bg-web')?.color, 'green');
  assert.equal(t.store.promotions.has('bg/web'), false, 'the request is cleared after the cutover');
  assert.equal(t.service('blue')?.replicas, 0);
});

test('controller restarted mid-cutover (probe cache lost, green up) converges without a second cutover', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1'));
  await t.run(10);
  t.store.envs.set('bg', env('v2'));
  await t.run(1, () => true); // green created
  t.restart();
  await t.run(1, () => true); // new process: probe again, cut over
  assert.equal(t.store.routes.get('bg-web')?.color, 'green');
  t.restart(); // killed while draining: the drain end comes from the stored history
  const res = await t.run(1, () => true);
  assert.ok(res?.requeueAfterMs !== undefined && res.requeueAfterMs > 0, 'still draining');
  assert.equal(t.service('blue')?.replicas, 2);
  await t.run(30);
  assert.equal(t.service('blue')?.replicas, 0);
  assert.equal(t.status().services.web?.cutovers?.filter((c) => c.toImage === img('v2')).length, 1);
  assert.equal(t.swarm.services.length, 2, 'no duplicate services');
});

test('env deleted: both colours, the route and its promotion requests are removed', async () => {
  const t = setup();
  t.store.envs.set('bg', env('v1'));
  await t.run(10);
  t.store.envs.set('bg', env('v2'));
  await t.run(20);
  t.store.promotions.set('bg/web', { color: 'blue', image: 'reg/web:v3' });
  t.store.promotions.set('bg-other/web', { color: 'green', image: 'reg/web:v3' });
  await t.store.markEnvironmentDeleted('bg');
  await t.run(1);
  assert.equal(t.store.envs.has('bg'), false);
  assert.equal(t.swarm.services.length, 0);
  assert.equal(t.store.routes.size, 0);
  assert.deepEqual([...t.store.promotions.keys()], ['bg-other/web']);
});

/** v1 converged on blue, then v2 applied and green created (the route still on blue). */
async function greenReady(t: ReturnType<typeof setup>) {
  t.store.envs.set('bg', env('v1'));
  await t.run(10);
  t.store.envs.set('bg', env('v2'));
  await t.run(1, () => true);
  assert.equal(t.store.routes.get('bg-web')?.color, 'blue');
}

test('a crash between the route switch and the status write resumes the same drain from the record beside the route', async () => {
  const t = setup();
  await greenReady(t);
  t.store.failNextStatusWrite = new Error('killed');
  await assert.rejects(t.run(1, () => true), /killed/);
  assert.equal(t.store.routes.get('bg-web')?.color, 'green', 'the switch was written');
  assert.notEqual(t.status().services.web?.cutovers?.at(-1)?.toImage, img('v2'), 'the status never heard of it');
  const switchedAt = t.clock.t;

  t.restart(); // a new controller process: nothing in memory
  t.clock.t += 3_000;
  await t.run(1, () => true);
  assert.equal(t.service('blue')?.replicas, 2, 'blue keeps serving through its drain');
  assert.equal(t.status().services.web?.activeColor, 'green');
  t.clock.t = switchedAt + 9_999;
  await t.run(1, () => true);
  assert.equal(t.service('blue')?.replicas, 2, 'the drain counts from the switch, not from the restart');
  t.clock.t = switchedAt + 10_000;
  await t.run(3);
  assert.equal(t.service('blue')?.replicas, 0, 'drained, then scaled to 0');
  assert.equal(t.status().phase, 'Ready');
});

test('the old colour drains only once every registered proxy serves the switch, then waits drain', async () => {
  const t = setup();
  t.store.proxies.set('edge-1', { id: 'edge-1', revision: '0', rejected: [] });
  t.store.proxies.set('edge-2', { id: 'edge-2', revision: '0', rejected: [] });
  await greenReady(t);
  await t.run(1, () => true); // the switch
  const rec = t.store.routes.get('bg-web')!.cutover!;
  assert.deepEqual(rec.proxies, ['edge-1', 'edge-2']);
  const switchedAt = t.clock.t;
  t.store.proxies.set('edge-1', { id: 'edge-1', revision: rec.revision, rejected: [] });
  t.store.proxies.set('edge-2', { id: 'edge-2', revision: rec.revision, rejected: ['bg-web'] }); // applied, but nginx rejected this route
  t.clock.t += 60_000;
  await t.run(1, () => true);
  assert.equal(t.service('blue')?.replicas, 2, 'edge-2 does not serve green yet: blue keeps serving');
  assert.equal(t.store.routes.get('bg-web')?.cutover?.drainFrom, undefined);
  assert.match(t.status().conditions.find((c) => c.type === 'CutoverReady')?.message ?? '', /until proxies edge-2 apply the switch/);
  t.store.proxies.set('edge-2', { id: 'edge-2', revision: String(Number(rec.revision) + 5), rejected: [] });
  t.clock.t += 1_000;
  await t.run(1, () => true);
  const ackedAt = t.clock.t;
  assert.equal(t.store.routes.get('bg-web')?.cutover?.drainFrom, new Date(ackedAt).toISOString(), 'the drain start is recorded beside the route');
  assert.equal(t.service('blue')?.replicas, 2);
  t.clock.t = ackedAt + 9_999;
  await t.run(1, () => true);
  assert.equal(t.service('blue')?.replicas, 2, 'drain counts from the last acknowledgement');
  t.clock.t = ackedAt + 10_000;
  await t.run(3);
  assert.equal(t.service('blue')?.replicas, 0);
  const wait = (await t.metrics.cutoverDrainWait.get()).values.find((v) => v.metricName === 'berth_cutover_drain_wait_seconds_sum')?.value;
  assert.equal(wait, (ackedAt - switchedAt) / 1000);
  assert.equal(t.status().conditions.find((c) => c.type === 'ProxyLagging'), undefined);
});

test('a proxy that stopped renewing holds the drain up to --proxy-wait, then is dropped (ProxyLagging)', async () => {
  const t = setup({ proxyWaitMs: 30_000 });
  t.store.proxies.set('edge-1', { id: 'edge-1', revision: '0', rejected: [] });
  await greenReady(t);
  await t.run(1, () => true); // the switch, edge-1 registered
  const switchedAt = t.clock.t;
  t.store.proxies.delete('edge-1'); // its lease expired: SIGSTOPped
  t.clock.t = switchedAt + 29_999;
  await t.run(1, () => true);
  assert.equal(t.service('blue')?.replicas, 2, 'held while within --proxy-wait');
  assert.equal(t.status().conditions.find((c) => c.type === 'ProxyLagging'), undefined);
  t.clock.t = switchedAt + 30_000;
  await t.run(1, () => true);
  const lagging = t.status().conditions.find((c) => c.type === 'ProxyLagging');
  assert.equal(lagging?.status, 'True');
  assert.match(lagging?.message ?? '', /web: edge-1/);
  assert.deepEqual(t.store.routes.get('bg-web')?.cutover?.lagging, ['edge-1']);
  assert.equal(t.service('blue')?.replicas, 2, 'then the drain itself');
  t.clock.t = switchedAt + 40_000;
  await t.run(3);
  assert.equal(t.service('blue')?.replicas, 0);
  assert.equal(t.status().conditions.find((c) => c.type === 'ProxyLagging'), undefined, 'cleared once drained');
});

test('with no proxy registered (confd) the drain is time-based from the switch', async () => {
  const t = setup();
  await greenReady(t);
  await t.run(1, () => true);
  const switchedAt = t.clock.t;
  t.clock.t = switchedAt + 9_999;
  await t.run(1, () => true);
  assert.equal(t.service('blue')?.replicas, 2);
  t.clock.t = switchedAt + 10_000;
  await t.run(3);
  assert.equal(t.service('blue')?.replicas, 0);
});
