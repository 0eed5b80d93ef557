import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConstraint, parseConstraints, satisfies } from '../../src/sim/constraints.js';
import { placeTasks, type Occupancy, type Placement, type SchedulableNode } from '../../src/sim/scheduler.js';

const node = (i: number, labels: Record<string, string> = {}, extra: Partial<SchedulableNode> = {}): SchedulableNode => ({
  id: `n${i}`,
  hostname: `sim-${i}`,
  role: i === 1 ? 'manager' : 'worker',
  labels: { zone: 'abc'[(i - 1) % 3]!, ...labels },
  available: true,
  ...extra,
});

const empty: Occupancy = { serviceTasks: () => 0, totalTasks: () => 0, hostPortsInUse: () => undefined };
const placement = (p: Partial<Placement> = {}): Placement => ({ constraints: [], maxReplicas: 0, hostPorts: [], ...p });
const count = (ids: string[]) => ids.reduce<Record<string, number>>((m, id) => ({ ...m, [id]: (m[id] ?? 0) + 1 }), {});

test('constraints: labels ==, !=, role and hostname; values compare case-insensitively; a missing label fails == and passes !=', () => {
  const n = node(2, { disk: 'SSD' });
  assert.equal(satisfies(n, parseConstraints(['node.labels.disk==ssd'])), true);
  assert.equal(satisfies(n, parseConstraints(['node.labels.disk!=ssd'])), false);
  assert.equal(satisfies(n, parseConstraints(['node.labels.gpu==yes'])), false);
  assert.equal(satisfies(n, parseConstraints(['node.labels.gpu!=yes'])), true);
  assert.equal(satisfies(n, parseConstraints(['node.role==worker', 'node.hostname == sim-2'])), true);
  assert.equal(satisfies(n, parseConstraints(['node.role==manager'])), false);
  assert.equal(satisfies(n, parseConstraints(['node.labels.berth.env==qa-1'])), false, 'dotted label names are looked up whole');
  assert.equal(satisfies(node(3, { 'berth.env': 'qa-1' }), parseConstraints(['node.labels.berth.env==qa-1'])), true);
  const { key, equal, value } = parseConstraint(' node.labels.zone != a ');
  assert.deepEqual({ key, equal, value }, { key: 'node.labels.zone', equal: false, value: 'a' });
  assert.throws(() => parseConstraint('node.labels.zone'), /operator/);
});

test('tasks spread over the fitting nodes: fewest tasks of the service first, then fewest tasks overall', () => {
  const nodes = [1, 2, 3, 4].map((i) => node(i));
  const busy: Occupancy = { ...empty, totalTasks: (id) => (id === 'n1' ? 5 : 0) };
  const r = placeTasks(nodes, placement(), busy, 6);
  assert.equal(r.unplacedReason, undefined);
  assert.deepEqual(r.nodeIds.slice(0, 3), ['n2', 'n3', 'n4'], 'the busy node comes last');
  assert.deepEqual(count(r.nodeIds), { n1: 1, n2: 2, n3: 2, n4: 1 });
});

test('only nodes that satisfy every constraint and are ready and active get tasks', () => {
  const nodes = [node(1), node(2), node(3), node(4), node(5, {}, { available: false })];
  const r = placeTasks(nodes, placement({ constraints: parseConstraints(['node.labels.zone==b']) }), empty, 3);
  assert.deepEqual(count(r.nodeIds), { n2: 3 }, 'n5 is zone b too but drained');
  assert.equal(r.unplacedReason, undefined);
});

test('MaxReplicas caps tasks per node; what does not fit stays unplaced with Swarm\'s explanation', () => {
  const nodes = [1, 2, 3, 4, 5, 6].map((i) => node(i));
  const p = placement({ constraints: parseConstraints(['node.labels.zone==a']), maxReplicas: 1 });
  const r = placeTasks(nodes, p, empty, 3);
  assert.deepEqual(r.nodeIds.sort(), ['n1', 'n4']);
  assert.equal(r.unplacedReason, 'no suitable node (scheduling constraints not satisfied on 4 nodes; max replicas per node limit exceed)');
  const already: Occupancy = { ...empty, serviceTasks: (id) => (id === 'n1' ? 1 : 0) };
  assert.deepEqual(placeTasks(nodes, p, already, 2).nodeIds, ['n4'], 'tasks already placed count toward the cap');
});

test('no node at all fits: nothing is placed and the reason names each filter', () => {
  const nodes = [node(1, {}, { available: false }), node(2), node(3)];
  const r = placeTasks(nodes, placement({ constraints: parseConstraints(['node.labels.pool==qa']) }), empty, 2);
  assert.deepEqual(r.nodeIds, []);
  assert.equal(r.unplacedReason, 'no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 2 nodes)');
});

test('a fixed host-mode port is bound once per node', () => {
  const nodes = [1, 2, 3].map((i) => node(i));
  const used: Occupancy = { ...empty, hostPortsInUse: (id) => (id === 'n2' ? new Set([8080]) : undefined) };
  const r = placeTasks(nodes, placement({ hostPorts: [8080] }), used, 3);
  assert.deepEqual(r.nodeIds, ['n1', 'n3']);
  assert.equal(r.unplacedReason, 'no suitable node (host-mode port already in use on 1 node; max replicas per node limit exceed)');
});

test('a spread preference balances label values before nodes', () => {
  // Zone a has three nodes, zone b one: without the preference zone a would get three of four tasks.
  const nodes = [node(1, { zone: 'a' }), node(2, { zone: 'a' }), node(3, { zone: 'a' }), node(4, { zone: 'b' })];
  const r = placeTasks(nodes, placement({ spreadBy: 'node.labels.zone' }), empty, 4);
  const byZone = count(r.nodeIds.map((id) => nodes.find((n) => n.id === id)!.labels.zone!));
  assert.deepEqual(byZone, { a: 2, b: 2 });
});
