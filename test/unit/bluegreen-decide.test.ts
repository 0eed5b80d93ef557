import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serviceSpecSchema, type ServiceSpec } from '../../src/api/environment.js';
import type { Color, CutoverRecord } from '../../src/api/status.js';
import { Registry } from 'prom-client';
import { createMetrics } from '../../src/metrics/registry.js';
import {
  appendCutover,
  colorHash,
  decideBlueGreen,
  observeCutover,
  type BlueGreenDecision,
  type BlueGreenPending,
  type BlueGreenStep,
  type ProbeResult,
  type PromotionRequest,
} from '../../src/reconcile/bluegreen.js';
import type { ObservedNode, ObservedService, ObservedTask } from '../../src/swarm/model.js';

const ENV = 'qa-1';
const SVC = 'api';

function spec(image: string, over: Omit<Partial<ServiceSpec>, 'strategy'> & { strategy?: Partial<ServiceSpec['strategy']> } = {}): ServiceSpec {
  const { strategy, ...rest } = over;
  return serviceSpecSchema.parse({
    image,
    replicas: 2,
    ports: [{ target: 8080 }],
    strategy: { type: 'blueGreen', drain: '10s', autoPromote: true, progressDeadline: '1m', ...strategy },
    ...rest,
  });
}

const nodes = new Map<string, ObservedNode>(
  ['n1', 'n2', 'n3'].map((id, i) => [
    id,
    { id, hostname: `lab-${i + 1}`, addr: `10.77.0.1${i + 1}`, role: 'worker', state: 'ready', availability: 'active', labels: {}, version: 1 },
  ]),
);

/** A tiny Swarm + route + status model that applies the steps the way the controller will. */
class World {
  spec: ServiceSpec;
  now = new Date('2026-01-01T00:00:00Z');
  svc: Partial<Record<Color, ObservedService>> = {};
  created: Partial<Record<Color, number>> = {};
  route: { color?: Color; servers: string[] } | undefined;
  pending: BlueGreenPending | undefined;
  cutovers: CutoverRecord[] = [];
  promotion: PromotionRequest | undefined;
  probe: ProbeResult | undefined;
  /** Images whose tasks never become healthy. */
  broken = new Set<string>();
  probeFails = new Set<string>();
  startMs = 3_000;
  steps: BlueGreenStep[] = [];
  routeHistory: { color?: Color; servers: string[] }[] = [];
  version = 0;

  constructor(s: ServiceSpec) {
    this.spec = s;
  }

  tasks(): ObservedTask[] {
    const out: ObservedTask[] = [];
    for (const c of ['blue', 'green'] as Color[]) {
      const s = this.svc[c];
      if (!s) continue;
      const up = !this.broken.has(s.image) && this.now.getTime() - (this.created[c] ?? 0) >= this.startMs;
      for (let i = 0; i < s.replicas; i++) {
        out.push({
          id: `${c}-${s.version}-${i}`,
          serviceId: s.id,
          nodeId: `n${(i % 3) + 1}`,
          slot: i + 1,
          desiredState: 'running',
          state: up ? 'running' : 'starting',
          ports: [{ target: 8080, published: (c === 'blue' ? 30000 : 31000) + s.version, protocol: 'tcp' }],
          message: '',
        });
      }
    }
    return out;
  }

  decide(): BlueGreenDecision {
    return decideBlueGreen({
      env: ENV,
      service: SVC,
      spec: this.spec,
      blue: this.svc.blue,
      green: this.svc.green,
      tasks: this.tasks(),
      nodes,
      route: this.route,
      pending: this.pending,
      cutovers: this.cutovers,
      promotion: this.promotion,
      probe: this.probe,
      now: this.now,
    });
  }

  apply(d: BlueGreenDecision): void {
    const s = d.step;
    this.steps.push(s);
    this.pending = d.pending;
    if (d.record) this.cutovers = appendCutover(this.cutovers, d.record);
    switch (s.kind) {
      case 'createOrUpdateIdle': {
        const prev = this.svc[s.color];
        const newVersion = !prev || prev.image !== this.spec.image || prev.labels['berth.spec-hash'] !== colorHash(ENV, SVC, this.spec, s.color, prev.replicas);
        this.version++;
        this.svc[s.color] = {
          id: `${s.color}-id`,
          name: `${ENV}_${SVC}_${s.color}`,
          version: this.version,
          labels: { 'berth.color': s.color, 'berth.spec-hash': s.hash },
          replicas: s.replicas,
          image: this.spec.image,
          createdAt: '',
          updatedAt: '',
        };
        if (newVersion || !prev || prev.replicas === 0) this.created[s.color] = this.now.getTime();
        break;
      }
      case 'scaleDown':
      case 'abandon': {
        // The controller updates only the replica count (labels unchanged).
        const prev = this.svc[s.color]!;
        this.svc[s.color] = { ...prev, replicas: 0 };
        break;
      }
      case 'probe':
        this.probe = {
          color: s.color,
          endpoints: s.endpoints,
          ok: !this.probeFails.has(this.spec.image),
          at: this.now.toISOString(),
        };
        break;
      case 'cutover':
        assert.ok(s.servers.length > 0, 'a cutover never writes an empty server set');
        this.route = { color: s.to, servers: s.servers };
        this.routeHistory.push(this.route);
        this.promotion = undefined;
        break;
      case 'syncRoute':
        if (s.replicas !== undefined) {
          const prev = this.svc[s.color]!;
          this.version++;
          this.svc[s.color] = { ...prev, version: this.version, replicas: s.replicas, labels: { ...prev.labels, 'berth.spec-hash': colorHash(ENV, SVC, this.spec, s.color, s.replicas) } };
        }
        assert.ok(s.servers.length > 0);
        this.route = { color: s.color, servers: s.servers };
        this.routeHistory.push(this.route);
        break;
      case 'wait':
        this.now = new Date(this.now.getTime() + s.requeueAfterMs);
        break;
      case 'done':
        break;
    }
  }

  /** Decide/apply until `done` or `stopAt` returns true; returns the step kinds. */
  run(stopAt: (d: BlueGreenDecision) => boolean = () => false, max = 200): string[] {
    const kinds: string[] = [];
    for (let i = 0; i < max; i++) {
      const d = this.decide();
      kinds.push(d.step.kind);
      if (d.step.kind === 'done' || stopAt(d)) {
        this.pending = d.pending;
        return kinds;
      }
      this.apply(d);
    }
    throw new Error(`no convergence: ${kinds.slice(-10).join(',')}`);
  }
}

const compact = (kinds: string[]) => kinds.filter((k, i) => k !== kinds[i - 1]);

test('first deploy: blue is created and cut over directly once healthy (no probe, no promotion)', () => {
  const w = new World(spec('web:v1', { strategy: { autoPromote: false } }));
  const kinds = w.run();
  assert.deepEqual(compact(kinds), ['createOrUpdateIdle', 'wait', 'cutover', 'done']);
  assert.equal(w.route?.color, 'blue');
  assert.deepEqual(w.route?.servers, ['10.77.0.11:30001', '10.77.0.12:30001']);
  assert.equal(w.cutovers.length, 1);
  assert.equal(w.cutovers[0]!.fromColor, undefined);
  assert.equal(w.cutovers[0]!.result, 'succeeded');
  assert.equal(w.svc.green, undefined);
  assert.equal(w.pending, undefined);
});

test('image change: green comes up, is probed, cut over in one step; blue drains, then scales to 0', () => {
  const w = new World(spec('web:v1'));
  w.run();
  w.spec = spec('web:v2');
  const cutAt: number[] = [];
  const kinds = w.run((d) => {
    if (d.step.kind === 'cutover') cutAt.push(w.now.getTime());
    return false;
  });
  assert.deepEqual(compact(kinds), ['createOrUpdateIdle', 'wait', 'probe', 'cutover', 'wait', 'scaleDown', 'done']);
  assert.equal(w.route?.color, 'green');
  assert.ok(w.route!.servers.every((s) => s.endsWith(':31002')));
  assert.equal(w.svc.blue?.replicas, 0);
  assert.equal(w.svc.green?.replicas, 2);
  const rec = w.cutovers.at(-1)!;
  assert.deepEqual([rec.fromColor, rec.toColor, rec.fromImage, rec.toImage, rec.result], ['blue', 'green', 'web:v1', 'web:v2', 'succeeded']);
  // Scale-down happened no earlier than drain (10s) after the cutover.
  const scaleStep = w.steps.findIndex((s) => s.kind === 'scaleDown');
  assert.ok(scaleStep > 0);
  assert.ok(w.now.getTime() - cutAt[0]! >= 10_000);
});

test('during drain the step is a wait with the remaining drain time', () => {
  const w = new World(spec('web:v1'));
  w.run();
  w.spec = spec('web:v2');
  w.run((d) => d.step.kind === 'cutover');
  w.apply(w.decide()); // the cutover
  const d = w.decide();
  assert.equal(d.step.kind, 'wait');
  assert.equal((d.step as { requeueAfterMs: number }).requeueAfterMs, 10_000);
  assert.match((d.step as { reason: string }).reason, /draining blue/);
});

test('unhealthy green: waits, then is abandoned at the deadline; the route never moves and it is not retried', () => {
  const w = new World(spec('web:v1'));
  w.run();
  const before = structuredClone(w.route);
  w.spec = spec('web:broken');
  w.broken.add('web:broken');
  const start = w.now.getTime();
  const kinds = w.run((d) => d.step.kind === 'wait' && /abandoned/.test((d.step as { reason: string }).reason));
  assert.deepEqual(compact(kinds), ['createOrUpdateIdle', 'wait', 'abandon', 'wait']);
  assert.equal(w.now.getTime() - start, 60_000, 'abandoned exactly at progressDeadline');
  assert.deepEqual(w.route, before);
  assert.equal(w.svc.green?.replicas, 0);
  const rec = w.cutovers.at(-1)!;
  assert.equal(rec.result, 'abandoned');
  assert.match(rec.message ?? '', /not healthy within 1m/);
  assert.equal(w.pending?.state, 'Abandoned');
  // Stays abandoned (no create loop) until the spec changes.
  for (let i = 0; i < 3; i++) {
    const d = w.decide();
    assert.equal(d.step.kind, 'wait');
    w.apply(d);
  }
  w.spec = spec('web:v3');
  assert.deepEqual(w.decide().step, { kind: 'createOrUpdateIdle', color: 'green', hash: colorHash(ENV, SVC, w.spec, 'green', 2), replicas: 2, reason: 'new version' });
  w.run();
  assert.equal(w.route?.color, 'green');
});

test('a failing probe keeps the route and abandons at the deadline', () => {
  const w = new World(spec('web:v1'));
  w.run();
  w.spec = spec('web:v2');
  w.probeFails.add('web:v2');
  w.run((d) => d.step.kind === 'abandon');
  assert.equal(w.route?.color, 'blue');
  assert.ok(w.steps.filter((s) => s.kind === 'probe').length >= 2, 'the probe is repeated');
});

test('autoPromote false: a healthy green waits (past the deadline) for berth promote, then cuts over', () => {
  const w = new World(spec('web:v1', { strategy: { autoPromote: false } }));
  w.run();
  w.spec = spec('web:v2', { strategy: { autoPromote: false } });
  let waits = 0;
  w.run((d) => d.step.kind === 'wait' && /berth promote/.test((d.step as { reason: string }).reason) && ++waits > 30);
  assert.equal(w.route?.color, 'blue');
  assert.equal(w.pending?.state, 'WaitingForPromotion');
  assert.ok(!w.steps.some((s) => s.kind === 'abandon'), 'a healthy green waiting for promotion is never abandoned');
  // A promotion for another image does nothing.
  w.promotion = { color: 'green', image: 'web:v9' };
  assert.equal(w.decide().step.kind, 'wait');
  w.promotion = { color: 'green', image: 'web:v2' };
  const kinds = w.run();
  assert.ok(kinds.includes('cutover'));
  assert.equal(w.route?.color, 'green');
  assert.equal(w.promotion, undefined);
});

test('replica-only change: the active colour is updated in place and the route refreshed; no cutover, idle untouched', () => {
  const w = new World(spec('web:v1'));
  w.run();
  w.spec = spec('web:v2');
  w.run(); // now green active, blue at 0
  const cutovers = w.cutovers.length;
  w.spec = spec('web:v2', { replicas: 3 });
  const kinds = w.run();
  assert.deepEqual(compact(kinds), ['syncRoute', 'done']);
  assert.equal(w.cutovers.length, cutovers);
  assert.equal(w.route?.color, 'green');
  assert.equal(w.route?.servers.length, 3);
  assert.equal(w.svc.blue?.replicas, 0);
  assert.ok(!w.steps.slice(-3).some((s) => s.kind === 'createOrUpdateIdle'));
});

test('a task moving to another node only refreshes the servers', () => {
  const w = new World(spec('web:v1'));
  w.run();
  w.route = { color: 'blue', servers: ['10.77.0.13:30001', '10.77.0.11:30001'] };
  const d = w.decide();
  assert.deepEqual(d.step, { kind: 'syncRoute', color: 'blue', servers: ['10.77.0.11:30001', '10.77.0.12:30001'] });
});

test('alternating colours 10 times: each deploy flips the colour, the route is never empty or half-way', () => {
  const w = new World(spec('web:v0'));
  w.run();
  const colors: Color[] = [w.route!.color!];
  for (let i = 1; i <= 10; i++) {
    w.spec = spec(`web:v${i}`);
    const kinds = w.run();
    assert.equal(kinds.filter((k) => k === 'cutover').length, 1, `deploy ${i}: exactly one cutover`);
    colors.push(w.route!.color!);
    const active = w.svc[w.route!.color!]!;
    assert.equal(active.image, `web:v${i}`);
    assert.equal(w.svc[w.route!.color! === 'blue' ? 'green' : 'blue']!.replicas, 0);
  }
  assert.deepEqual(colors, ['blue', 'green', 'blue', 'green', 'blue', 'green', 'blue', 'green', 'blue', 'green', 'blue']);
  for (const r of w.routeHistory) assert.ok(r.servers.length > 0);
  assert.equal(w.cutovers.length, 10, 'history keeps the last 10');
  assert.ok(w.cutovers.every((c) => c.result === 'succeeded'));
});

test('reverting to the active version mid-rollout scales the half-made green down', () => {
  const w = new World(spec('web:v1'));
  w.run();
  w.spec = spec('web:v2');
  w.broken.add('web:v2');
  w.apply(w.decide()); // green created
  w.spec = spec('web:v1');
  const kinds = w.run();
  assert.deepEqual(compact(kinds), ['scaleDown', 'done']);
  assert.equal(w.pending, undefined);
  assert.equal(w.route?.color, 'blue');
});

test('cutover metrics: counter by result and a duration histogram', async () => {
  const m = createMetrics(new Registry());
  observeCutover({ at: '', toColor: 'green', toImage: 'x', durationSeconds: 4, result: 'succeeded' }, m);
  observeCutover({ at: '', toColor: 'green', toImage: 'x', durationSeconds: 60, result: 'abandoned' }, m);
  const text = await m.registry.metrics();
  assert.match(text, /berth_cutovers_total\{result="succeeded"\} 1/);
  assert.match(text, /berth_cutovers_total\{result="abandoned"\} 1/);
  assert.match(text, /berth_cutover_duration_seconds_count 1/);
});
