import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serviceSpecSchema, type ServiceSpec } from '../../src/api/environment.js';
import type { BlueGreenState, Color, CutoverRecord, PendingAttempt, PromotionRequest } from '../../src/api/status.js';
import { Registry } from 'prom-client';
import { createMetrics } from '../../src/metrics/registry.js';
import {
  appendCutover,
  decideBlueGreen,
  observeCutover,
  type BlueGreenDecision,
  type BlueGreenInput,
  type ProbeResult,
} from '../../src/reconcile/bluegreen/index.js';
import { LABEL_SPEC_HASH } from '../../src/swarm/labels.js';
import type { ObservedNode, ObservedService, ObservedTask } from '../../src/swarm/model.js';
import { buildServiceSpec } from '../../src/swarm/service-spec.js';
import { containerTemplate } from '../../src/swarm/translate.js';
import { legacySpecHash } from '../support/legacy-spec-hash.js';

const ENV = 'qa-1';
const SVC = 'api';
const T0 = Date.parse('2026-01-01T00:00:00Z');

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

const port = (c: Color, version: number) => (c === 'blue' ? 30000 : 31000) + version;

/** Tasks of a colour: `replicas` of them, the first `running` running (all by default), spread over n1..n3, made from `template`. */
function tasksOf(s: ObservedService, c: Color, running = s.replicas, template = s.template): ObservedTask[] {
  return Array.from({ length: s.replicas }, (_, i) => ({
    id: `${c}-${s.version}-${i}`,
    serviceId: s.id,
    nodeId: `n${(i % 3) + 1}`,
    slot: i + 1,
    desiredState: 'running' as const,
    state: i < running ? ('running' as const) : ('starting' as const),
    template,
    ports: [{ target: 8080, published: port(c, s.version), protocol: 'tcp' as const }],
    message: '',
  }));
}

const endpointsOf = (c: Color, n: number, version = 1) => Array.from({ length: n }, (_, i) => `10.77.0.1${(i % 3) + 1}:${port(c, version)}`).sort();

// ---------------------------------------------------------------------------------------------
// The state table: one row per state of the machine, and the resize cases.

interface Colour {
  /** The spec the colour was last set to (its image and hash). */
  runs: ServiceSpec;
  replicas: number;
  /** Running tasks (default: all). */
  running?: number;
  /** Labelled by a berth from before replicas left the hash. */
  legacy?: boolean;
}

interface Row {
  name: string;
  spec: ServiceSpec;
  blue?: Colour;
  green?: Colour;
  route?: { color: Color; servers: string[] };
  pending?: PendingAttempt;
  cutovers?: CutoverRecord[];
  promotion?: PromotionRequest;
  probe?: ProbeResult;
  /** Seconds after T0. */
  at?: number;
  uncoloured?: boolean;
  expect: {
    state: BlueGreenState;
    /** `op color replicas` per Swarm change. */
    changes?: string[];
    route?: string;
    probe?: Color;
    pending?: PendingAttempt['state'] | 'none';
    record?: CutoverRecord['result'];
    requeueAfterMs?: number | 'none';
    remove?: number;
  };
}

function observe(c: Color, col: Colour): ObservedService {
  const built = buildServiceSpec(ENV, SVC, { ...col.runs, replicas: col.replicas }, c);
  const labels = { ...built.Labels! };
  if (col.legacy) labels[LABEL_SPEC_HASH] = legacySpecHash(built);
  return { id: `${c}-id`, name: built.Name!, version: 1, labels, replicas: col.replicas, image: col.runs.image, template: templateOf(c, col.runs), createdAt: '', updatedAt: '' };
}

/** The container template a colour built from `s` makes its tasks from. */
function templateOf(c: Color, s: ServiceSpec): string {
  return containerTemplate((buildServiceSpec(ENV, SVC, s, c).TaskTemplate as { ContainerSpec?: unknown }).ContainerSpec);
}

function inputOf(row: Row): BlueGreenInput {
  const blue = row.blue && observe('blue', row.blue);
  const green = row.green && observe('green', row.green);
  const tasks = [...(blue ? tasksOf(blue, 'blue', row.blue!.running) : []), ...(green ? tasksOf(green, 'green', row.green!.running) : [])];
  const uncoloured: ObservedService[] = row.uncoloured
    ? [{ id: 'rolling-id', name: `${ENV}_${SVC}`, version: 1, labels: {}, replicas: 2, image: 'web:v0', template: 'web:v0', createdAt: '', updatedAt: '' }]
    : [];
  return {
    env: ENV,
    service: SVC,
    spec: row.spec,
    blue,
    green,
    uncoloured,
    tasks,
    nodes,
    route: row.route,
    pending: row.pending,
    cutovers: row.cutovers,
    promotion: row.promotion,
    probe: row.probe,
    now: new Date(T0 + (row.at ?? 0) * 1000),
  };
}

const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const v1 = spec('web:v1');
const v2 = spec('web:v2');
const v2manual = spec('web:v2', { strategy: { autoPromote: false } });
const blueRoute = (n = 2) => ({ color: 'blue' as const, servers: endpointsOf('blue', n) });
const greenRoute = (n = 2) => ({ color: 'green' as const, servers: endpointsOf('green', n) });
const attempt = (state: PendingAttempt['state'], image = 'web:v2', color: Color = 'green'): PendingAttempt => ({ color, image, since: iso(0), state });
const probed = (ok: boolean, at = 0): ProbeResult => ({ color: 'green', endpoints: endpointsOf('green', 2), ok, at: iso(at), ...(ok ? {} : { message: 'HTTP 500' }) });
const cutToGreen = (at: number): CutoverRecord => ({ at: iso(at), fromColor: 'blue', toColor: 'green', fromImage: 'web:v1', toImage: 'web:v2', durationSeconds: 3, result: 'succeeded' });

const rows: Row[] = [
  // -- the states
  { name: 'fresh: nothing exists, blue is created', spec: v1, expect: { state: 'Fresh', changes: ['create blue 2'], pending: 'Progressing' } },
  {
    name: 'fresh: blue created, tasks still starting',
    spec: v1,
    blue: { runs: v1, replicas: 2, running: 0 },
    pending: attempt('Progressing', 'web:v1', 'blue'),
    at: 3,
    expect: { state: 'Starting', changes: [], pending: 'Progressing', requeueAfterMs: 1_000 },
  },
  {
    name: 'fresh: blue healthy, the first cutover needs no probe or promotion',
    spec: spec('web:v1', { strategy: { autoPromote: false } }),
    blue: { runs: v1, replicas: 2 },
    pending: attempt('Progressing', 'web:v1', 'blue'),
    expect: { state: 'CutOver', route: 'cutover blue 2', pending: 'none', record: 'succeeded' },
  },
  { name: 'green starting: a new image starts the idle colour', spec: v2, blue: { runs: v1, replicas: 2 }, route: blueRoute(), expect: { state: 'Starting', changes: ['create green 2'], pending: 'Progressing' } },
  {
    name: 'green starting: its tasks are not all running yet',
    spec: v2,
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2, running: 1 },
    route: blueRoute(),
    pending: attempt('Progressing'),
    at: 5,
    expect: { state: 'Starting', changes: [], pending: 'Progressing' },
  },
  {
    name: 'green starting: all running, probed before promotion',
    spec: v2,
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2 },
    route: blueRoute(),
    pending: attempt('Progressing'),
    at: 5,
    expect: { state: 'Starting', probe: 'green', pending: 'Probing' },
  },
  {
    name: 'green unhealthy: the probe fails, retried until the deadline; the route stays',
    spec: v2,
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2 },
    route: blueRoute(),
    pending: attempt('Probing'),
    probe: probed(false, 5),
    at: 6,
    expect: { state: 'Unhealthy', changes: [], pending: 'Probing', requeueAfterMs: 1_000 },
  },
  {
    name: 'green unhealthy at progressDeadline: abandoned, scaled to 0',
    spec: v2,
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2, running: 0 },
    route: blueRoute(),
    pending: attempt('Progressing'),
    at: 60,
    expect: { state: 'Aborted', changes: ['scale green 0'], pending: 'Abandoned', record: 'abandoned' },
  },
  {
    name: 'waiting for promote: healthy and probed, autoPromote false',
    spec: v2manual,
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2manual, replicas: 2 },
    route: blueRoute(),
    pending: attempt('Probing'),
    probe: probed(true, 599),
    at: 600,
    expect: { state: 'WaitingForPromotion', changes: [], pending: 'WaitingForPromotion', requeueAfterMs: 5_000 },
  },
  {
    name: 'waiting for promote: promoted, cut over in one route write',
    spec: v2manual,
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2manual, replicas: 2 },
    route: blueRoute(),
    pending: attempt('WaitingForPromotion'),
    probe: probed(true, 600),
    promotion: { color: 'green', image: 'web:v2' },
    at: 601,
    expect: { state: 'CutOver', changes: [], route: 'cutover green 2', pending: 'none', record: 'succeeded' },
  },
  {
    name: 'cut over: green serves the spec, blue at 0; nothing to do',
    spec: v2,
    blue: { runs: v1, replicas: 0 },
    green: { runs: v2, replicas: 2 },
    route: greenRoute(),
    cutovers: [cutToGreen(0)],
    at: 100,
    expect: { state: 'CutOver', changes: [], pending: 'none', requeueAfterMs: 'none' },
  },
  {
    name: 'draining: blue keeps running until the drain ends',
    spec: v2,
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2 },
    route: greenRoute(),
    cutovers: [cutToGreen(0)],
    at: 4,
    expect: { state: 'Draining', changes: [], requeueAfterMs: 6_000 },
  },
  {
    name: 'draining: the drain is over, blue goes to 0',
    spec: v2,
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2 },
    route: greenRoute(),
    cutovers: [cutToGreen(0)],
    at: 10,
    expect: { state: 'Draining', changes: ['scale blue 0'] },
  },
  {
    name: 'a release during the drain: blue keeps its old tasks until the drain ends, then takes the new version',
    spec: spec('web:v3'),
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2 },
    route: greenRoute(),
    cutovers: [cutToGreen(0)],
    at: 4,
    expect: { state: 'Draining', changes: [], pending: 'none', requeueAfterMs: 6_000 },
  },
  {
    name: 'a release during the drain: drained, blue goes to 0 first (no rolling update over its old tasks)',
    spec: spec('web:v3'),
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2 },
    route: greenRoute(),
    cutovers: [cutToGreen(0)],
    at: 10,
    expect: { state: 'Draining', changes: ['scale blue 0'], pending: 'none' },
  },
  {
    name: 'a release after the drain: blue at 0 takes the new version and starts',
    spec: spec('web:v3'),
    blue: { runs: v1, replicas: 0 },
    green: { runs: v2, replicas: 2 },
    route: greenRoute(),
    cutovers: [cutToGreen(0)],
    at: 11,
    expect: { state: 'Starting', changes: ['update blue 2'], pending: 'Progressing' },
  },
  {
    name: 'aborted: stays put until the spec changes',
    spec: spec('web:broken'),
    blue: { runs: v1, replicas: 2 },
    green: { runs: spec('web:broken'), replicas: 0 },
    route: blueRoute(),
    pending: attempt('Abandoned', 'web:broken'),
    at: 300,
    expect: { state: 'Aborted', changes: [], pending: 'Abandoned', requeueAfterMs: 60_000 },
  },
  {
    name: 'resized mid-cutover (3 → 2 while green waits for promotion): both colours follow',
    spec: spec('web:v2', { replicas: 2, strategy: { autoPromote: false } }),
    blue: { runs: spec('web:v1', { replicas: 3 }), replicas: 3 },
    green: { runs: spec('web:v2', { replicas: 3, strategy: { autoPromote: false } }), replicas: 3 },
    route: blueRoute(3),
    pending: attempt('WaitingForPromotion'),
    at: 30,
    expect: { state: 'Resizing', changes: ['scale blue 2', 'update green 2'], pending: 'WaitingForPromotion' },
  },
  // -- resizing is not a release
  {
    name: 'resize of a cut-over service (1 → 3): the live colour in place, no new colour',
    spec: spec('web:v1', { replicas: 3 }),
    blue: { runs: spec('web:v1', { replicas: 1 }), replicas: 1 },
    route: blueRoute(1),
    expect: { state: 'Resizing', changes: ['update blue 3'], pending: 'none' },
  },
  {
    name: 'resize of a cut-over service whose label an older berth wrote (replicas in the hash)',
    spec: spec('web:v1', { replicas: 3 }),
    blue: { runs: spec('web:v1', { replicas: 1 }), replicas: 1, legacy: true },
    route: blueRoute(1),
    expect: { state: 'Resizing', changes: ['update blue 3'], pending: 'none' },
  },
  {
    name: 'upgrade: a live colour labelled by an older berth runs the spec; nothing changes',
    spec: v1,
    blue: { runs: v1, replicas: 2, legacy: true },
    route: blueRoute(),
    expect: { state: 'CutOver', changes: [], requeueAfterMs: 'none' },
  },
  {
    name: 'resize while green starts (2 → 3): both colours follow, the attempt continues',
    spec: spec('web:v2', { replicas: 3 }),
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2, running: 0 },
    route: blueRoute(),
    pending: attempt('Progressing'),
    at: 5,
    expect: { state: 'Resizing', changes: ['scale blue 3', 'update green 3'], pending: 'Progressing' },
  },
  {
    name: 'resize while aborted: the live colour follows, the failed one stays at 0',
    spec: spec('web:broken', { replicas: 3 }),
    blue: { runs: v1, replicas: 2 },
    green: { runs: spec('web:broken'), replicas: 0 },
    route: blueRoute(),
    pending: attempt('Abandoned', 'web:broken'),
    at: 300,
    expect: { state: 'Aborted', changes: ['scale blue 3'], pending: 'Abandoned' },
  },
  {
    name: 'resize while draining: the live colour follows, the draining one is left alone',
    spec: spec('web:v2', { replicas: 3 }),
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2 },
    route: greenRoute(),
    cutovers: [cutToGreen(0)],
    at: 4,
    expect: { state: 'Draining', changes: ['update green 3'], requeueAfterMs: 6_000 },
  },
  {
    name: 'the live colour resized during a cutover: its new endpoints join the route, green keeps waiting',
    spec: spec('web:v2', { replicas: 3, strategy: { autoPromote: false } }),
    blue: { runs: v1, replicas: 3 },
    green: { runs: spec('web:v2', { replicas: 3, strategy: { autoPromote: false } }), replicas: 3 },
    route: blueRoute(2),
    pending: attempt('WaitingForPromotion'),
    probe: { color: 'green', endpoints: endpointsOf('green', 3), ok: true, at: iso(29) },
    at: 30,
    expect: { state: 'WaitingForPromotion', changes: [], route: 'refresh blue 3', pending: 'WaitingForPromotion' },
  },
  // -- housekeeping
  {
    name: 'cut over with a rolling service left from before: it is removed',
    spec: v1,
    blue: { runs: v1, replicas: 2 },
    route: blueRoute(),
    uncoloured: true,
    expect: { state: 'CutOver', changes: [], remove: 1 },
  },
  {
    name: 'a task of the live colour moved: only the route servers are refreshed',
    spec: v1,
    blue: { runs: v1, replicas: 2 },
    route: { color: 'blue', servers: ['10.77.0.13:30001', '10.77.0.11:30001'] },
    expect: { state: 'CutOver', changes: [], route: 'refresh blue 2' },
  },
  {
    name: 'reverted to the live version mid-rollout: the half-made green goes to 0 at once',
    spec: v1,
    blue: { runs: v1, replicas: 2 },
    green: { runs: v2, replicas: 2, running: 0 },
    route: blueRoute(),
    pending: attempt('Progressing'),
    expect: { state: 'Draining', changes: ['scale green 0'], pending: 'none' },
  },
];

for (const row of rows) {
  test(`state table: ${row.name}`, () => {
    const d = decideBlueGreen(inputOf(row));
    const e = row.expect;
    assert.equal(d.state, e.state);
    if (e.changes) assert.deepEqual(d.changes.map((c) => `${c.op} ${c.color} ${c.replicas}`), e.changes);
    const route = d.route && `${d.route.kind} ${d.route.kind === 'cutover' ? d.route.to : d.route.color} ${d.route.servers.length}`;
    assert.equal(route, e.route);
    if (d.route) assert.ok(d.route.servers.length > 0, 'a route is never written empty');
    assert.equal(d.probe?.color, e.probe);
    if (e.pending) assert.equal(d.pending?.state ?? 'none', e.pending);
    assert.equal(d.record?.result, e.record);
    if (e.requeueAfterMs !== undefined) assert.equal(d.requeueAfterMs ?? 'none', e.requeueAfterMs);
    assert.equal(d.remove.length, e.remove ?? 0);
    // No decision ever starts a colour on a resize: a create or a new version only when the image changed.
    if (/resize/i.test(row.name)) assert.ok(!d.changes.some((c) => c.op === 'create'), 'a resize never creates a colour');
  });
}

test('state table: every state of the machine has a row', () => {
  const seen = new Set(rows.map((r) => r.expect.state));
  for (const s of ['Fresh', 'Starting', 'Unhealthy', 'WaitingForPromotion', 'CutOver', 'Draining', 'Aborted', 'Resizing'] satisfies BlueGreenState[]) {
    assert.ok(seen.has(s), `no row for ${s}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Walks: the decisions applied to a tiny Swarm + route + status model, the way the executor does.

class World {
  spec: ServiceSpec;
  now = new Date(T0);
  svc: Partial<Record<Color, ObservedService>> = {};
  created: Partial<Record<Color, number>> = {};
  route: { color?: Color; servers: string[] } | undefined;
  pending: PendingAttempt | undefined;
  cutovers: CutoverRecord[] = [];
  promotion: PromotionRequest | undefined;
  probe: ProbeResult | undefined;
  /** Images whose tasks never become healthy. */
  broken = new Set<string>();
  probeFails = new Set<string>();
  startMs = 3_000;
  /** What was applied, one line each: `create blue 2`, `probe green`, `cutover green`, `wait`. */
  effects: string[] = [];
  states: BlueGreenState[] = [];
  routeHistory: { color?: Color; servers: string[] }[] = [];
  /** The highest replica count each colour was ever given. */
  peak: Partial<Record<Color, number>> = {};
  version = 0;

  constructor(s: ServiceSpec) {
    this.spec = s;
  }

  tasks(): ObservedTask[] {
    return (['blue', 'green'] as const).flatMap((c) => {
      const s = this.svc[c];
      if (!s) return [];
      const up = !this.broken.has(s.image) && this.now.getTime() - (this.created[c] ?? 0) >= this.startMs;
      return tasksOf(s, c, up ? s.replicas : 0);
    });
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

  /** Applies one decision; returns false when it had nothing to apply and nothing to wait for (converged). */
  apply(d: BlueGreenDecision): boolean {
    this.states.push(d.state);
    if (d.probe) {
      this.effects.push(`probe ${d.probe.color}`);
      this.probe = { color: d.probe.color, endpoints: d.probe.endpoints, ok: !this.probeFails.has(this.spec.image), at: this.now.toISOString() };
      return true;
    }
    this.pending = d.pending;
    if (d.record) this.cutovers = appendCutover(this.cutovers, d.record);
    for (const c of d.changes) {
      this.effects.push(`${c.op} ${c.color} ${c.replicas}`);
      const prev = this.svc[c.color];
      this.version++;
      if (c.op === 'scale') this.svc[c.color] = { ...prev!, version: this.version, replicas: c.replicas };
      else {
        const built = c.spec;
        assert.equal(built.Mode?.Replicated?.Replicas, c.replicas);
        const newVersion = !prev || prev.labels[LABEL_SPEC_HASH] !== built.Labels![LABEL_SPEC_HASH];
        this.svc[c.color] = { id: `${c.color}-id`, name: built.Name!, version: this.version, labels: built.Labels!, replicas: c.replicas, image: this.spec.image, template: templateOf(c.color, this.spec), createdAt: '', updatedAt: '' };
        if (newVersion || prev.replicas === 0) this.created[c.color] = this.now.getTime();
      }
      this.peak[c.color] = Math.max(this.peak[c.color] ?? 0, c.replicas);
    }
    if (d.route) {
      this.effects.push(`${d.route.kind} ${d.route.kind === 'cutover' ? d.route.to : d.route.color}`);
      assert.ok(d.route.servers.length > 0, 'a route is never written empty');
      this.route = { color: d.route.kind === 'cutover' ? d.route.to : d.route.color, servers: d.route.servers };
      this.routeHistory.push(this.route);
      if (d.route.kind === 'cutover') this.promotion = undefined;
    }
    if (d.changes.length > 0 || d.route || d.remove.length > 0) return true;
    if (d.requeueAfterMs === undefined) return false;
    this.effects.push('wait');
    this.now = new Date(this.now.getTime() + Math.max(d.requeueAfterMs, 1));
    return true;
  }

  /** Decide/apply until converged or `stopAt` returns true. */
  run(stopAt: (d: BlueGreenDecision) => boolean = () => false, max = 300): void {
    for (let i = 0; i < max; i++) {
      const d = this.decide();
      if (stopAt(d) || !this.apply(d)) return;
    }
    throw new Error(`no convergence: ${this.effects.slice(-10).join(', ')}`);
  }

  /** The effects since `from`, repeated waits folded into one. */
  since(from: number): string[] {
    return this.effects.slice(from).filter((e, i, all) => e !== 'wait' || all[i - 1] !== 'wait');
  }
}

test('first deploy: blue is created and cut over directly once healthy (no probe, no promotion)', () => {
  const w = new World(spec('web:v1', { strategy: { autoPromote: false } }));
  w.run();
  assert.deepEqual(w.since(0), ['create blue 2', 'wait', 'cutover blue']);
  assert.equal(w.route?.color, 'blue');
  assert.deepEqual(w.route?.servers, ['10.77.0.11:30001', '10.77.0.12:30001']);
  assert.equal(w.cutovers.length, 1);
  assert.equal(w.cutovers[0]!.fromColor, undefined);
  assert.equal(w.cutovers[0]!.result, 'succeeded');
  assert.equal(w.svc.green, undefined);
  assert.equal(w.pending, undefined);
  assert.deepEqual(w.states.filter((s, i, all) => s !== all[i - 1]), ['Fresh', 'Starting', 'CutOver']);
});

test('image change: green comes up, is probed, cut over in one step; blue drains, then scales to 0', () => {
  const w = new World(spec('web:v1'));
  w.run();
  const from = w.effects.length;
  w.spec = spec('web:v2');
  let cutAt = 0;
  w.run((d) => {
    if (d.route?.kind === 'cutover') cutAt = w.now.getTime();
    return false;
  });
  assert.deepEqual(w.since(from), ['create green 2', 'wait', 'probe green', 'cutover green', 'wait', 'scale blue 0']);
  assert.equal(w.route?.color, 'green');
  assert.ok(w.route!.servers.every((s) => s.endsWith(':31002')));
  assert.equal(w.svc.blue?.replicas, 0);
  assert.equal(w.svc.green?.replicas, 2);
  const rec = w.cutovers.at(-1)!;
  assert.deepEqual([rec.fromColor, rec.toColor, rec.fromImage, rec.toImage, rec.result], ['blue', 'green', 'web:v1', 'web:v2', 'succeeded']);
  assert.ok(w.now.getTime() - cutAt >= 10_000, 'scaled down no earlier than drain after the cutover');
});

test('during drain the decision waits for the remaining drain time', () => {
  const w = new World(spec('web:v1'));
  w.run();
  w.spec = spec('web:v2');
  w.run((d) => d.route?.kind === 'cutover');
  w.apply(w.decide()); // the cutover
  const d = w.decide();
  assert.equal(d.state, 'Draining');
  assert.deepEqual(d.changes, []);
  assert.equal(d.requeueAfterMs, 10_000);
  assert.match(d.message, /draining blue/);
});

test('unhealthy green: waits, then is abandoned at the deadline; the route never moves and it is not retried', () => {
  const w = new World(spec('web:v1'));
  w.run();
  const before = structuredClone(w.route);
  w.spec = spec('web:broken');
  w.broken.add('web:broken');
  const start = w.now.getTime();
  const from = w.effects.length;
  w.run((d) => d.state === 'Aborted' && d.changes.length === 0);
  assert.deepEqual(w.since(from), ['create green 2', 'wait', 'scale green 0']);
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
    assert.equal(d.state, 'Aborted');
    assert.deepEqual(d.changes, []);
    w.apply(d);
  }
  w.spec = spec('web:v3');
  assert.deepEqual(w.decide().changes.map((c) => `${c.op} ${c.color} ${c.replicas}`), ['update green 2']);
  w.run();
  assert.equal(w.route?.color, 'green');
});

test('a failing probe keeps the route and abandons at the deadline', () => {
  const w = new World(spec('web:v1'));
  w.run();
  w.spec = spec('web:v2');
  w.probeFails.add('web:v2');
  w.run((d) => d.record?.result === 'abandoned');
  assert.equal(w.route?.color, 'blue');
  assert.ok(w.effects.filter((s) => s === 'probe green').length >= 2, 'the probe is repeated');
  assert.ok(w.states.includes('Unhealthy'));
});

test('autoPromote false: a healthy green waits (past the deadline) for berth promote, then cuts over', () => {
  const w = new World(spec('web:v1', { strategy: { autoPromote: false } }));
  w.run();
  w.spec = spec('web:v2', { strategy: { autoPromote: false } });
  let waits = 0;
  w.run((d) => d.state === 'WaitingForPromotion' && ++waits > 30);
  assert.equal(w.route?.color, 'blue');
  assert.equal(w.pending?.state, 'WaitingForPromotion');
  assert.ok(!w.cutovers.some((c) => c.result === 'abandoned'), 'a healthy green waiting for promotion is never abandoned');
  // A promotion for another image does nothing.
  w.promotion = { color: 'green', image: 'web:v9' };
  assert.equal(w.decide().state, 'WaitingForPromotion');
  w.promotion = { color: 'green', image: 'web:v2' };
  w.run();
  assert.equal(w.route?.color, 'green');
  assert.equal(w.promotion, undefined);
});

test('replica-only change: the live colour is updated in place and the route refreshed; no cutover, idle untouched', () => {
  const w = new World(spec('web:v1'));
  w.run();
  w.spec = spec('web:v2');
  w.run(); // now green active, blue at 0
  const cutovers = w.cutovers.length;
  const hash = w.svc.green!.labels[LABEL_SPEC_HASH];
  const from = w.effects.length;
  w.spec = spec('web:v2', { replicas: 3 });
  w.run();
  assert.deepEqual(w.since(from), ['update green 3', 'refresh green']);
  assert.equal(w.svc.green!.labels[LABEL_SPEC_HASH], hash, 'the same version: replicas are not in the hash');
  assert.equal(w.cutovers.length, cutovers);
  assert.equal(w.route?.color, 'green');
  assert.equal(w.route?.servers.length, 3);
  assert.equal(w.svc.blue?.replicas, 0);
});

test('resize 1 → 3 of a served colour never gives the idle colour a replica', () => {
  const w = new World(spec('web:v1', { replicas: 1 }));
  w.run();
  w.spec = spec('web:v1', { replicas: 3 });
  w.run();
  assert.equal(w.svc.blue?.replicas, 3);
  assert.equal(w.svc.green, undefined);
  assert.equal(w.peak.green, undefined);
  assert.deepEqual(w.routeHistory.map((r) => r.color), ['blue', 'blue']);
});

test('resized while green waits for promotion: both colours follow, promotion keeps the capacity', () => {
  const manual = (replicas: number, image = 'web:v2') => spec(image, { replicas, strategy: { autoPromote: false } });
  const w = new World(manual(3, 'web:v1'));
  w.run();
  w.spec = manual(3);
  let waits = 0;
  w.run((d) => d.state === 'WaitingForPromotion' && ++waits > 3);
  const since = w.pending!.since;
  w.spec = manual(2);
  w.run((d) => d.state === 'WaitingForPromotion' && d.changes.length === 0 && !d.route && !d.probe);
  assert.equal(w.svc.blue?.replicas, 2, 'the live colour follows the new size');
  assert.equal(w.svc.green?.replicas, 2, 'the waiting colour follows the new size');
  assert.equal(w.route?.color, 'blue');
  assert.equal(w.route?.servers.length, 2, 'the live route holds the live colour at its new size');
  assert.equal(w.pending?.since, since, 'the same attempt: a resize is not a new release');
  assert.equal(w.peak.green, 3, 'green was never given more than it had');
  w.promotion = { color: 'green', image: 'web:v2' };
  w.run();
  assert.equal(w.route?.color, 'green');
  assert.equal(w.route?.servers.length, 2);
  assert.equal(w.svc.green?.replicas, 2);
  assert.equal(w.svc.blue?.replicas, 0);
});

test('alternating colours 10 times: each deploy flips the colour, the route is never empty or half-way', () => {
  const w = new World(spec('web:v0'));
  w.run();
  const colors: Color[] = [w.route!.color!];
  for (let i = 1; i <= 10; i++) {
    w.spec = spec(`web:v${i}`);
    const from = w.effects.length;
    w.run();
    assert.equal(w.since(from).filter((k) => k.startsWith('cutover')).length, 1, `deploy ${i}: exactly one cutover`);
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
  const from = w.effects.length;
  w.run();
  assert.deepEqual(w.since(from), ['scale green 0']);
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

test('a release during a drain: the idle colour set to the new version while its old tasks still run is neither probed nor routed on them', () => {
  const v3 = spec('web:v3');
  // green serves v2 (just cut over); blue, still draining v1, has been set to v3: Swarm has not replaced a task yet.
  const input = inputOf({ name: 'release during drain', spec: v3, blue: { runs: v3, replicas: 2 }, green: { runs: v2, replicas: 2 }, route: greenRoute(), cutovers: [cutToGreen(0)], at: 1, expect: { state: 'Starting' } });
  input.tasks = [...tasksOf(input.blue!, 'blue', 2, templateOf('blue', v1)), ...tasksOf(input.green!, 'green')];
  const d = decideBlueGreen(input);
  assert.equal(d.state, 'Starting');
  assert.equal(d.probe, undefined, 'the old tasks are not probed as the new version');
  assert.equal(d.route, undefined);
  assert.match(d.message, /blue has 0\/2 replicas running/);

  // Swarm replaced them: the new tasks run, but its update is still going: not yet.
  input.tasks = [...tasksOf(input.blue!, 'blue', 2), ...tasksOf(input.green!, 'green')];
  input.blue = { ...input.blue!, updateStatus: { state: 'updating', message: 'update in progress', startedAt: iso(1) } };
  assert.equal(decideBlueGreen(input).state, 'Starting');
  assert.equal(decideBlueGreen(input).probe, undefined);

  // Update completed: probed, on the new tasks' endpoints.
  input.blue = { ...input.blue, updateStatus: { state: 'completed', message: 'update completed', startedAt: iso(1) } };
  const next = decideBlueGreen(input);
  assert.deepEqual(next.probe, { color: 'blue', endpoints: endpointsOf('blue', 2) });
});

test('a change of the environment only: the idle colour’s old tasks (same image) are not counted as the new version’s', () => {
  const withFlag = spec('web:v2', { environment: { FEATURE: 'on' } });
  // green serves v2; blue was set to v2 with FEATURE=on, and Swarm has not yet marked the update
  // as under way (its UpdateStatus still says the previous update completed).
  const input = inputOf({ name: 'env-only change', spec: withFlag, blue: { runs: withFlag, replicas: 2 }, green: { runs: v2, replicas: 2 }, route: greenRoute(), cutovers: [cutToGreen(0)], at: 1, expect: { state: 'Starting' } });
  input.blue = { ...input.blue!, updateStatus: { state: 'completed', message: 'update completed', startedAt: iso(0) } };
  input.tasks = [...tasksOf(input.blue, 'blue', 2, templateOf('blue', v2)), ...tasksOf(input.green!, 'green')];
  const d = decideBlueGreen(input);
  assert.equal(d.probe, undefined, 'the tasks without FEATURE=on are not probed as the new version');
  assert.equal(d.route, undefined);
  assert.match(d.message, /blue has 0\/2 replicas running/);

  input.tasks = [...tasksOf(input.blue, 'blue', 2), ...tasksOf(input.green!, 'green')];
  assert.deepEqual(decideBlueGreen(input).probe, { color: 'blue', endpoints: endpointsOf('blue', 2) });
});
