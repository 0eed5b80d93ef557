import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { environmentSchema, serviceSpecSchema, type RebalanceRecord, type ServiceSpec, type ServiceStatus } from '../../src/api/index.js';
import { environmentStatus } from '../../src/reconcile/env-status.js';
import { decideRebalance, rebalanceTarget, unevenness, withRebalanceReplicas, type RebalanceDecision, type RebalanceTarget } from '../../src/reconcile/planner/index.js';
import { LABEL_ENV } from '../../src/swarm/labels.js';
import type { ObservedNode, ObservedService, ObservedTask, TaskState } from '../../src/swarm/model.js';
import { NodeTable } from '../../src/swarm/node-index.js';
import { buildServiceSpec } from '../../src/swarm/service-spec.js';
import { fakeNode } from '../support/fake-swarm.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(NOW + s * 1000);

function spec(replicas: number, extra: Record<string, unknown> = {}): ServiceSpec {
  return serviceSpecSchema.parse({ image: '10.77.0.1:5000/web:v1', replicas, ports: [{ target: 8080 }], ...extra });
}

const heldNodes = (n: number, zones?: string[]): ObservedNode[] =>
  Array.from({ length: n }, (_, i) => fakeNode(i + 1, { labels: { [LABEL_ENV]: 'qa' }, ...(zones ? { zone: zones[i] } : {}) }));

/**
 * One Swarm service's tasks as Swarm handles a replica change (swarmkit's replicated
 * orchestrator): a new task goes to a node with the fewest of the service's tasks (`pick` breaks
 * ties, so a property can try every order); scaling down removes a task Swarm could not place
 * first, else one from a node with the most tasks (one that does not run, if that node has one)
 * — whether or not a task elsewhere fails.
 */
class SpreadService {
  replicas: number;
  tasks: ObservedTask[] = [];
  private seq = 0;
  /** The state a new task reaches (running: started and healthy). */
  newTaskState: TaskState = 'running';
  /** Nodes a new task may not go to (a constraint, no room). */
  excluded = new Set<string>();

  constructor(
    readonly nodes: ObservedNode[],
    counts: number[],
    private readonly pick: (candidates: string[]) => string = (c) => c[0]!,
  ) {
    counts.forEach((n, i) => {
      for (let k = 0; k < n; k++) this.add(nodes[i]!.id, 'running');
    });
    this.replicas = this.tasks.length;
  }

  private add(nodeId: string, state: TaskState): void {
    this.tasks.push({ id: `t${++this.seq}`, serviceId: 'svc1', nodeId, slot: this.seq, desiredState: 'running', state, template: 'x', ports: [], message: state === 'pending' ? 'no suitable node (max replicas per node limit exceed)' : 'started' });
  }

  count(nodeId: string): number {
    return this.tasks.filter((t) => t.nodeId === nodeId).length;
  }

  setReplicas(n: number): void {
    while (this.tasks.length < n) {
      const open = this.nodes.map((x) => x.id).filter((id) => !this.excluded.has(id));
      if (open.length === 0) {
        this.add('', 'pending');
        continue;
      }
      const least = Math.min(...open.map((id) => this.count(id)));
      this.add(this.pick(open.filter((id) => this.count(id) === least)), this.newTaskState);
    }
    while (this.tasks.length > n) {
      const most = Math.max(...this.nodes.map((x) => this.count(x.id)));
      const onFullest = this.tasks.filter((t) => t.nodeId !== '' && this.count(t.nodeId) === most);
      const victim = this.tasks.find((t) => t.nodeId === '') ?? onFullest.find((t) => t.state !== 'running') ?? onFullest[0]!;
      this.tasks = this.tasks.filter((t) => t !== victim);
    }
    this.replicas = n;
  }

  counts(): number[] {
    return this.nodes.map((x) => this.count(x.id));
  }

  target(extra: Partial<ObservedService> = {}): RebalanceTarget {
    const service: ObservedService = { id: 'svc1', name: 'qa_web', version: 1, labels: {}, replicas: this.replicas, image: 'x', template: 'x', createdAt: '', updatedAt: '', ...extra };
    return { service, tasks: structuredClone(this.tasks) };
  }
}

/** Decides and applies passes (2 s apart) until nothing is recorded any more, or `max` passes. */
function run(s: SpreadService, sp: ServiceSpec, opts: { record?: RebalanceRecord; max?: number; start?: number } = {}) {
  let record = opts.record;
  const decisions: RebalanceDecision[] = [];
  let peak = s.replicas;
  for (let pass = 0; pass < (opts.max ?? 40); pass++) {
    const d = decideRebalance({ spec: sp, generation: 1, nodes: s.nodes, target: s.target(), previous: record, now: at((opts.start ?? 0) + pass * 2) });
    decisions.push(d);
    s.setReplicas(d.replicas);
    peak = Math.max(peak, s.replicas);
    record = d.record;
    if (!record || record.state === 'Unbalanced') break;
  }
  return { decisions, record, peak, results: decisions.flatMap((d) => (d.result ? [d.result] : [])) };
}

test('unevenness is 0 exactly when no two domains differ by more than one task', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(20), { minLength: 1, maxLength: 8 }), (counts) => {
      const even = Math.max(...counts) - Math.min(...counts) <= 1;
      assert.equal(unevenness(counts) === 0, even);
    }),
  );
  assert.equal(unevenness([3, 3, 0]), 4);
  assert.equal(unevenness([2, 3, 1]), 2);
  assert.equal(unevenness([4, 2, 2]), 1);
});

test('3 + 3 on a third node: two moves, one replica more at most, then 2 + 2 + 2 and nothing remembered', () => {
  const s = new SpreadService(heldNodes(3), [3, 3, 0]);
  const { results, record, peak, decisions } = run(s, spec(6));
  assert.deepEqual(s.counts(), [2, 2, 2]);
  assert.deepEqual(results, ['balanced']);
  assert.equal(record, undefined);
  assert.equal(peak, 7, 'never more than one task moving');
  assert.equal(decisions.filter((d) => d.replicas === 7).length, 2, 'two surges: only the tasks that had to move');
  assert.equal(s.tasks.length, 6);
});

test('property: from any spread on 2-5 nodes, whatever node Swarm picks among the emptiest, it ends even, one extra task at most, and stops', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 5 }).chain((n) => fc.tuple(fc.constant(n), fc.array(fc.nat(6), { minLength: n, maxLength: n }), fc.array(fc.nat(), { minLength: 64, maxLength: 64 }))),
      ([n, counts, choices]) => {
        fc.pre(counts.reduce((a, b) => a + b, 0) >= 2);
        let i = 0;
        const s = new SpreadService(heldNodes(n), counts, (c) => c[choices[i++ % choices.length]! % c.length]!);
        const replicas = s.replicas;
        const { results, record, peak } = run(s, spec(replicas));
        assert.equal(unevenness(s.counts()), 0, `ended ${s.counts()}`);
        assert.equal(record, undefined);
        assert.ok(peak <= replicas + 1);
        assert.equal(s.replicas, replicas);
        assert.deepEqual(results, unevenness(counts) === 0 ? [] : ['balanced']);
      },
    ),
  );
});

test('placement.rebalance: false: nothing moves and nothing is recorded', () => {
  const s = new SpreadService(heldNodes(3), [3, 3, 0]);
  const { decisions } = run(s, spec(6, { placement: { rebalance: false } }));
  assert.deepEqual(decisions, [{ replicas: 6, record: undefined }]);
  assert.deepEqual(s.counts(), [3, 3, 0]);
});

test('a spreadBy service is even when its zones are: no move for 2 + 1 + 3 over zones a, a, b', () => {
  const s = new SpreadService(heldNodes(3, ['a', 'a', 'b']), [2, 1, 3]);
  assert.deepEqual(run(s, spec(6, { placement: { spreadBy: 'node.labels.zone' } })).decisions, [{ replicas: 6, record: undefined }]);
  const uneven = new SpreadService(heldNodes(3, ['a', 'a', 'b']), [3, 3, 0]);
  assert.equal(decideRebalance({ spec: spec(6, { placement: { spreadBy: 'node.labels.zone' } }), generation: 1, nodes: uneven.nodes, target: uneven.target(), previous: undefined, now: at(0) }).replicas, 7);
});

test('nothing starts while the service is not settled: a task not yet running, or Swarm in the middle of an update', () => {
  const s = new SpreadService(heldNodes(3), [3, 3, 0]);
  const starting = s.target();
  starting.tasks[0]!.state = 'starting';
  const decide = (target: RebalanceTarget) => decideRebalance({ spec: spec(6), generation: 1, nodes: s.nodes, target, previous: undefined, now: at(0) });
  assert.equal(decide(starting).replicas, 6);
  assert.equal(decide(s.target({ updateStatus: { state: 'updating', message: '', startedAt: '' } })).replicas, 6);
  assert.equal(decide(s.target({ replicas: 7 })).replicas, 6, 'a count that differs from the spec is put back first');
  assert.equal(decide(s.target()).replicas, 7);
});

test('no room for the extra task: Unbalanced at once, back to the spec, and not tried again for the same nodes and generation', () => {
  const s = new SpreadService(heldNodes(3), [3, 3, 0]);
  s.excluded = new Set(s.nodes.map((n) => n.id));
  const { results, record, decisions } = run(s, spec(6));
  assert.deepEqual(results, ['unbalanced']);
  assert.equal(record?.state, 'Unbalanced');
  assert.match(record!.message, /no room for a task/);
  assert.equal(decisions.at(-1)!.replicas, 6);
  s.excluded.clear();
  s.setReplicas(6);
  const again = decideRebalance({ spec: spec(6), generation: 1, nodes: s.nodes, target: s.target(), previous: record, now: at(600) });
  assert.deepEqual(again, { replicas: 6, record }, 'remembered: no loop');
  const newGeneration = decideRebalance({ spec: spec(6), generation: 2, nodes: s.nodes, target: s.target(), previous: record, now: at(600) });
  assert.equal(newGeneration.replicas, 7, 'a new spec generation is a new attempt');
  const newNodes = decideRebalance({ spec: spec(6), generation: 1, nodes: s.nodes.slice(0, 2), target: new SpreadService(s.nodes.slice(0, 2), [6, 0]).target(), previous: record, now: at(600) });
  assert.equal(newNodes.replicas, 7, 'a new node set is a new attempt');
});

test('the extra task never healthy: waits up to progressDeadline, then Unbalanced; the extra task stays until Swarm runs it elsewhere, then goes', () => {
  const s = new SpreadService(heldNodes(3), [3, 3, 0]);
  s.newTaskState = 'starting';
  const sp = spec(6, { strategy: { progressDeadline: '30s' } });
  const { results, record, decisions } = run(s, sp);
  assert.deepEqual(results, ['unbalanced']);
  assert.match(record!.message, /not running and healthy within 30s/);
  const waited = decisions.filter((d) => d.replicas === 7).length;
  assert.ok(waited >= 16 && waited <= 18, `held the extra task for the deadline (${waited} passes of 2 s)`);
  assert.equal(decisions.at(-1)!.replicas, 7, 'not trimmed yet: Swarm would stop a healthy task and keep the failing one');
  const decide = (now: Date) => decideRebalance({ spec: sp, generation: 1, nodes: s.nodes, target: s.target(), previous: record, now });
  assert.equal(decide(at(120)).replicas, 7, 'still failing on the new node: kept');
  // After 5 failures Swarm places the slot on another node, where it runs.
  const extra = s.tasks.find((t) => t.state === 'starting')!;
  Object.assign(extra, { nodeId: s.nodes[0]!.id, state: 'running' });
  const back = decide(at(150));
  assert.equal(back.replicas, 6);
  assert.equal(back.record, record, 'still Unbalanced: not tried again');
  s.setReplicas(back.replicas);
  assert.deepEqual(s.counts(), [3, 3, 0], 'back to the spread before the move, every task healthy');
  assert.deepEqual(decideRebalance({ spec: sp, generation: 1, nodes: s.nodes, target: s.target(), previous: record, now: at(152) }), { replicas: 6, record });
});

test('a failed move whose extra task never runs anywhere is trimmed after 5 minutes', () => {
  const s = new SpreadService(heldNodes(3), [3, 3, 0]);
  s.newTaskState = 'starting';
  const sp = spec(6, { strategy: { progressDeadline: '30s' } });
  const { record } = run(s, sp);
  const since = Date.parse(record!.since);
  const decide = (ms: number) => decideRebalance({ spec: sp, generation: 1, nodes: s.nodes, target: s.target(), previous: record, now: new Date(since + ms) }).replicas;
  assert.equal(decide(5 * 60_000 - 1), 7);
  assert.equal(decide(5 * 60_000), 6);
});

test('a move that does not even things out (Swarm put the task on a full node) stops: Unbalanced', () => {
  const s = new SpreadService(heldNodes(3), [3, 3, 0]);
  s.excluded = new Set([s.nodes[2]!.id]); // a constraint berth does not read keeps the third node out
  const { results, record } = run(s, spec(6));
  assert.deepEqual(results, ['unbalanced']);
  assert.match(record!.message, /did not even them out/);
  assert.deepEqual(s.counts(), [3, 3, 0]);
  assert.equal(s.replicas, 6);
});

test('the node set or the generation changing during a move stops it (superseded), back to the spec', () => {
  const s = new SpreadService(heldNodes(3), [3, 3, 0]);
  const first = decideRebalance({ spec: spec(6), generation: 1, nodes: s.nodes, target: s.target(), previous: undefined, now: at(0) });
  s.setReplicas(first.replicas);
  const d = decideRebalance({ spec: spec(6), generation: 2, nodes: s.nodes, target: s.target(), previous: first.record, now: at(2) });
  assert.equal(d.replicas, 6);
  assert.equal(d.result, 'superseded');
  assert.equal(d.record, undefined);
});

test('withRebalanceReplicas changes only the services that move, and nothing when none does', () => {
  const env = environmentSchema.parse({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: 'qa' },
    spec: { group: 'g', nodes: 3, services: { web: { image: 'i', replicas: 6 }, api: { image: 'i', replicas: 2 } } },
  });
  assert.equal(withRebalanceReplicas(env, new Map([['web', { replicas: 6, record: undefined }]])), env);
  const moved = withRebalanceReplicas(env, new Map([['web', { replicas: 7, record: undefined }]]));
  assert.equal(moved.spec.services.web!.replicas, 7);
  assert.equal(moved.spec.services.api!.replicas, 2);
  assert.equal(env.spec.services.web!.replicas, 6, 'the spec itself is not changed');
});

test('the target: a blue-green service spreads its live colour only when no cutover is under way; a rolled-back rolling service is left alone', () => {
  const sp = spec(6, { strategy: { type: 'blueGreen' } });
  const colour = (c: 'blue' | 'green', replicas: number): ObservedService => {
    const built = buildServiceSpec('qa', 'web', sp, c);
    return { id: `id-${c}`, name: built.Name!, version: 1, labels: built.Labels!, replicas, image: sp.image, template: sp.image, createdAt: '', updatedAt: '' };
  };
  const snapshot = (green: number) => ({ nodes: NodeTable.of(heldNodes(3)), services: [colour('blue', 6), colour('green', green)], tasks: [] });
  const live: ServiceStatus = { desiredReplicas: 6, runningReplicas: 6, image: sp.image, endpoints: [], activeColor: 'blue' };
  assert.equal(rebalanceTarget('qa', 'web', sp, snapshot(0), live, undefined)?.service.name, 'qa_web_blue');
  assert.equal(rebalanceTarget('qa', 'web', sp, snapshot(6), live, undefined), undefined, 'the old colour still drains');
  const pending = { ...live, pending: { color: 'green' as const, image: sp.image, since: '', state: 'Progressing' as const } };
  assert.equal(rebalanceTarget('qa', 'web', sp, snapshot(0), pending, undefined), undefined, 'a cutover is under way');
  assert.equal(rebalanceTarget('qa', 'web', spec(6, { strategy: { type: 'blueGreen' }, image: '10.77.0.1:5000/web:v2' }), snapshot(0), live, undefined), undefined, 'a release is about to start');

  const rolling = spec(6);
  const built = buildServiceSpec('qa', 'web', rolling);
  const svc: ObservedService = { id: 'r', name: 'qa_web', version: 1, labels: built.Labels!, replicas: 6, image: rolling.image, template: rolling.image, createdAt: '', updatedAt: '' };
  const snap = { nodes: NodeTable.of(heldNodes(3)), services: [svc], tasks: [] };
  assert.equal(rebalanceTarget('qa', 'web', rolling, snap, undefined, undefined)?.service.id, 'r');
  assert.equal(rebalanceTarget('qa', 'web', rolling, snap, undefined, { specHash: 'x', image: 'y', message: '', since: '' }), undefined);
});

test('status: condition Unbalanced while moving (phase Progressing) and when stuck (phase stays Ready: every replica runs)', () => {
  const env = environmentSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name: 'qa', generation: 1 }, spec: { group: 'g', nodes: 3, services: { web: { image: 'i', replicas: 6 } } } });
  const record: RebalanceRecord = { state: 'Moving', nodes: ['a', 'b', 'c'], generation: 1, since: at(0).toISOString(), moves: 1, unevenness: 2, message: 'moving task 1 to spread lab-1 3, lab-2 3, lab-3 0' };
  const status = (rebalance?: RebalanceRecord) =>
    environmentStatus({
      env,
      previous: undefined,
      nodes: { held: [], actions: [], desired: 3, missing: 0 },
      heldNodes: [],
      services: { web: { desiredReplicas: 6, runningReplicas: 6, image: 'i', endpoints: [], ...(rebalance ? { rebalance } : {}) } },
      changed: false,
      now: at(0),
    });
  const moving = status(record);
  assert.equal(moving.phase, 'Progressing');
  assert.deepEqual(
    moving.conditions.filter((c) => c.type === 'Unbalanced').map((c) => [c.status, c.reason, c.message]),
    [['True', 'Rebalancing', `web: ${record.message}`]],
  );
  const stuck = status({ ...record, state: 'Unbalanced', message: 'no room' });
  assert.equal(stuck.phase, 'Ready');
  assert.equal(stuck.conditions.find((c) => c.type === 'Unbalanced')?.reason, 'RebalanceStuck');
  assert.equal(status().conditions.find((c) => c.type === 'Unbalanced'), undefined);
});
