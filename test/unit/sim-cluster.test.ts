import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SimCluster, type ClusterOptions } from '../../src/sim/cluster.js';
import { EngineError } from '../../src/sim/errors.js';
import { EventBus, type DockerEvent } from '../../src/sim/events.js';
import type { Json, SimTask } from '../../src/sim/model.js';
import { FakeClock } from '../support/fake-clock.js';

const START_MS = 100;
const STOP_MS = 50;

function world(nodes = 6, opts: Partial<ClusterOptions> = {}) {
  const clock = new FakeClock();
  clock.advance(1_700_000_000_000);
  const events = new EventBus();
  const seen: DockerEvent[] = [];
  events.subscribe((e) => seen.push(e));
  const cluster = new SimCluster({ clock, events, nodes, nodeLabels: { pool: 'qa' }, taskStartMs: START_MS, taskStopMs: STOP_MS, ...opts });
  const hostOf = (id: string) => cluster.nodeById(id)!.hostname;
  const live = (svc: string): SimTask[] => [...cluster.tasksOf(cluster.service(svc).id)].filter((t) => t.desiredState === 'running');
  return { clock, events, seen, cluster, hostOf, live };
}

const spec = (name: string, extra: Json = {}): Json => ({
  Name: name,
  TaskTemplate: { ContainerSpec: { Image: 'web:v1', Labels: { 'berth.env': 'qa-1' } }, Placement: extra.Placement ?? {} },
  Mode: { Replicated: { Replicas: extra.replicas ?? 2 } },
  EndpointSpec: { Ports: [{ TargetPort: 8080, PublishMode: 'host' }] },
  ...(extra.UpdateConfig ? { UpdateConfig: extra.UpdateConfig } : {}),
});

test('nodes: sim-1…N, Ready and Active, the given labels plus zone a|b|c round robin; sim-1 leads', () => {
  const { cluster } = world(4);
  assert.deepEqual(cluster.nodes.map((n) => [n.hostname, n.labels.zone, n.labels.pool, n.state, n.availability]), [
    ['sim-1', 'a', 'qa', 'ready', 'active'],
    ['sim-2', 'b', 'qa', 'ready', 'active'],
    ['sim-3', 'c', 'qa', 'ready', 'active'],
    ['sim-4', 'a', 'qa', 'ready', 'active'],
  ]);
  assert.equal(new Set(cluster.nodes.map((n) => n.addr)).size, 4);
  assert.equal(cluster.self?.hostname, 'sim-1');
  assert.equal(cluster.node('sim-3').labels.zone, 'c', 'nodes resolve by hostname');
});

test('a task goes new → assigned → starting → running after the start delay, with a host port and its node', () => {
  const { clock, cluster, live, hostOf } = world();
  cluster.createService(spec('api', { Placement: { Constraints: ['node.labels.zone==b'] } }));
  assert.deepEqual(live('api').map((t) => t.state), ['new', 'new'], 'placed by the next scheduling pass, not inline');
  clock.advance(0);
  assert.deepEqual(live('api').map((t) => t.state), ['assigned', 'assigned']);
  clock.advance(START_MS / 2);
  assert.deepEqual(live('api').map((t) => t.state), ['starting', 'starting']);
  clock.advance(START_MS / 2);
  const tasks = live('api');
  assert.deepEqual(tasks.map((t) => t.state), ['running', 'running']);
  assert.deepEqual(tasks.map((t) => t.slot).sort(), [1, 2]);
  assert.deepEqual(tasks.map((t) => hostOf(t.nodeId)).sort(), ['sim-2', 'sim-5'], 'zone b, one each');
  for (const t of tasks) {
    assert.equal(t.hostPorts[0]?.target, 8080);
    assert.ok(t.hostPorts[0]!.published >= 32768, 'a port from the ephemeral range');
  }
});

test('tasks that fit nowhere stay pending with the reason, and are placed once a node gets the label', () => {
  const { clock, cluster, live, hostOf } = world();
  cluster.createService(spec('api', { Placement: { Constraints: ['node.labels.berth.env==qa-1'], MaxReplicas: 1 } }));
  clock.advance(START_MS);
  assert.deepEqual(live('api').map((t) => t.state), ['pending', 'pending']);
  assert.match(live('api')[0]!.err!, /^no suitable node \(scheduling constraints not satisfied on 6 nodes\)$/);
  const n3 = cluster.node('sim-3');
  cluster.updateNode('sim-3', n3.version, { Role: 'worker', Availability: 'active', Labels: { ...n3.labels, 'berth.env': 'qa-1' } });
  clock.advance(START_MS);
  const tasks = live('api');
  assert.deepEqual(tasks.map((t) => t.state).sort(), ['pending', 'running'], 'max one per node: the second waits');
  assert.equal(hostOf(tasks.find((t) => t.state === 'running')!.nodeId), 'sim-3');
  assert.match(tasks.find((t) => t.state === 'pending')!.err!, /max replicas per node limit exceed/);
});

test('a label change that breaks a running task\'s constraint moves it to a node that still fits', () => {
  const { clock, cluster, live, hostOf } = world();
  cluster.createService(spec('api', { replicas: 1, Placement: { Constraints: ['node.labels.zone==a'] } }));
  clock.advance(START_MS);
  const [before] = live('api');
  assert.equal(hostOf(before!.nodeId), 'sim-1');
  const n1 = cluster.node('sim-1');
  cluster.updateNode(n1.id, n1.version, { Role: 'manager', Availability: 'active', Labels: { zone: 'b' } });
  assert.equal(before!.desiredState, 'shutdown');
  clock.advance(START_MS);
  const [after] = live('api');
  assert.equal(hostOf(after!.nodeId), 'sim-4');
  assert.equal(after!.state, 'running');
  assert.equal(after!.slot, before!.slot, 'the replacement keeps the slot');
  assert.equal(before!.state, 'shutdown');
});

test('a node that gets or loses a label is placed on as its labels now say, not as they said when first asked about', () => {
  const { clock, cluster, live, hostOf } = world();
  const label = (host: string, labels: Record<string, string>) => {
    const n = cluster.node(host);
    cluster.updateNode(n.id, n.version, { Role: n.role, Availability: 'active', Labels: labels });
  };
  label('sim-1', { pool: 'qa', team: 'x' });
  cluster.createService(spec('a', { replicas: 1, Placement: { Constraints: ['node.labels.team==x'] } }));
  clock.advance(START_MS);
  assert.equal(hostOf(live('a')[0]!.nodeId), 'sim-1');
  label('sim-2', { pool: 'qa', team: 'X' }); // values compare case-insensitively
  cluster.createService(spec('b', { replicas: 1, Placement: { Constraints: ['node.labels.team==x'] } }));
  clock.advance(START_MS);
  assert.equal(hostOf(live('b')[0]!.nodeId), 'sim-2', 'the less loaded node that got the label since');
  label('sim-2', { pool: 'qa' });
  label('sim-3', { pool: 'qa', team: 'x' });
  clock.advance(START_MS);
  assert.equal(hostOf(live('b')[0]!.nodeId), 'sim-3', 'moved off the node that lost it, to the one that got it');
});

test('scaling up adds slots, scaling down removes tasks; versions rise; a stale version fails like Docker', () => {
  const { clock, cluster, live } = world();
  const svc = cluster.createService(spec('api'));
  clock.advance(START_MS);
  const v1 = svc.version;
  cluster.updateService('api', v1, { ...svc.spec, Mode: { Replicated: { Replicas: 4 } } });
  assert.ok(svc.version > v1, 'Version.Index rises on update');
  clock.advance(START_MS);
  assert.deepEqual(live('api').map((t) => t.slot).sort(), [1, 2, 3, 4]);
  assert.equal(cluster.serviceStatus(svc).RunningTasks, 4);
  assert.throws(
    () => cluster.updateService('api', v1, { ...svc.spec, Mode: { Replicated: { Replicas: 1 } } }),
    (err: unknown) => err instanceof EngineError && err.status === 500 && /update out of sequence/.test(err.message),
  );
  cluster.updateService('api', svc.version, { ...svc.spec, Mode: { Replicated: { Replicas: 1 } } });
  clock.advance(STOP_MS);
  assert.equal(live('api').length, 1);
  assert.equal([...cluster.tasksOf(svc.id)].filter((t) => t.state === 'shutdown').length, 3, 'stopped tasks stay as history');
  assert.deepEqual(cluster.serviceStatus(svc), { RunningTasks: 1, DesiredTasks: 1, CompletedTasks: 0 });
});

test('an image change replaces every task; start-first keeps the old one until the new one runs; UpdateStatus completes', () => {
  const { clock, cluster, live, seen } = world();
  const svc = cluster.createService(spec('api', { UpdateConfig: { Order: 'start-first' } }));
  clock.advance(START_MS);
  const old = live('api');
  const next = structuredClone(svc.spec);
  next.TaskTemplate.ContainerSpec.Image = 'web:v2';
  cluster.updateService('api', svc.version, next);
  assert.equal(svc.updateStatus?.state, 'updating');
  clock.advance(0);
  assert.deepEqual(old.map((t) => t.desiredState), ['running', 'running'], 'old tasks run while the new ones start');
  clock.advance(START_MS);
  assert.deepEqual(old.map((t) => t.desiredState), ['shutdown', 'shutdown']);
  assert.deepEqual(live('api').map((t) => t.spec.ContainerSpec.Image), ['web:v2', 'web:v2']);
  assert.equal(svc.updateStatus?.state, 'completed');
  const updates = seen.filter((e) => e.Type === 'service' && e.Action === 'update').map((e) => e.Actor.Attributes);
  assert.deepEqual(updates, [
    { name: 'api', 'image.old': 'web:v1', 'image.new': 'web:v2' },
    { name: 'api', 'updatestate.new': 'updating' },
    { name: 'api', 'updatestate.old': 'updating', 'updatestate.new': 'completed' },
  ]);
});

test('service and node events carry Docker\'s attributes; container events only for the manager\'s own tasks by default', () => {
  const { clock, cluster, seen } = world(3);
  const svc = cluster.createService(spec('api', { replicas: 3 }));
  clock.advance(START_MS);
  cluster.updateService('api', svc.version, { ...svc.spec, Mode: { Replicated: { Replicas: 2 } } });
  const n2 = cluster.node('sim-2');
  cluster.updateNode('sim-2', n2.version, { Role: 'worker', Availability: 'drain', Labels: n2.labels });
  cluster.removeService('api');
  clock.advance(STOP_MS);
  const swarm = seen.filter((e) => e.scope === 'swarm').map((e) => [e.Type, e.Action, e.Actor.Attributes]);
  assert.deepEqual(swarm, [
    ['service', 'create', { name: 'api' }],
    ['service', 'update', { name: 'api', 'replicas.old': '3', 'replicas.new': '2' }],
    ['node', 'update', { name: 'sim-2', 'availability.old': 'active', 'availability.new': 'drain' }],
    ['service', 'remove', { name: 'api' }],
  ]);
  const containers = seen.filter((e) => e.Type === 'container');
  assert.ok(containers.length > 0);
  const self = cluster.self!.id;
  for (const e of containers) {
    assert.equal(e.Actor.Attributes['com.docker.swarm.node.id'], self, 'only sim-1\'s containers');
    assert.equal(e.Actor.Attributes['com.docker.swarm.service.name'], 'api');
    assert.equal(e.Actor.Attributes['berth.env'], 'qa-1', 'container labels from the spec');
  }
  assert.deepEqual(containers.map((e) => e.Action), ['create', 'start', 'die', 'destroy']);
  assert.equal(cluster.taskCount, 0, 'a removed service\'s tasks are gone once stopped');
});

test('--container-events all reports every node\'s containers; none reports none', () => {
  for (const [scope, expected] of [['all', 3], ['none', 0]] as const) {
    const { clock, cluster, seen } = world(3, { containerEvents: scope });
    cluster.createService(spec('api', { replicas: 3 }));
    clock.advance(START_MS);
    assert.equal(seen.filter((e) => e.Type === 'container' && e.Action === 'start').length, expected, scope);
  }
});

test('a name already taken is a 409; an invalid constraint a 400; global services run one task per fitting node', () => {
  const { clock, cluster, live, hostOf } = world(4);
  cluster.createService(spec('api'));
  assert.throws(() => cluster.createService(spec('api')), (e: unknown) => e instanceof EngineError && e.status === 409);
  assert.throws(() => cluster.createService(spec('bad', { Placement: { Constraints: ['node.labels.zone'] } })), (e: unknown) => e instanceof EngineError && e.status === 400);
  cluster.createService({ ...spec('agent', { Placement: { Constraints: ['node.labels.zone==a'] } }), Mode: { Global: {} } });
  clock.advance(START_MS);
  assert.deepEqual(live('agent').map((t) => [hostOf(t.nodeId), t.state, t.slot]).sort(), [['sim-1', 'running', 0], ['sim-4', 'running', 0]]);
  const idle = cluster.nodes.find((n) => hostOf(n.id) !== 'sim-1' && !live('api').some((t) => t.nodeId === n.id) && n.labels.zone !== 'a')!;
  cluster.updateNode(idle.id, idle.version, { Role: idle.role, Availability: 'active', Labels: { ...idle.labels, zone: 'a' } });
  clock.advance(START_MS);
  assert.deepEqual(live('agent').map((t) => hostOf(t.nodeId)).sort(), ['sim-1', hostOf(idle.id), 'sim-4'].sort(), 'a node that now fits, running nothing, gets one too');
});

test('history per slot is capped like Swarm\'s task retention limit', () => {
  const { clock, cluster } = world(3, { taskHistory: 2 });
  const svc = cluster.createService(spec('api', { replicas: 1 }));
  clock.advance(START_MS);
  for (let i = 2; i <= 5; i++) {
    const next = structuredClone(svc.spec);
    next.TaskTemplate.ContainerSpec.Image = `web:v${i}`;
    cluster.updateService('api', svc.version, next);
    clock.advance(START_MS + STOP_MS);
  }
  const images = [...cluster.tasksOf(svc.id)].map((t) => t.spec.ContainerSpec.Image).sort();
  assert.deepEqual(images, ['web:v4', 'web:v5']);
});

test('label constraints match values case-insensitively; the pending reason counts every node, as Swarm\'s does', () => {
  const { clock, cluster, live, hostOf } = world();
  cluster.createService(spec('api', { Placement: { Constraints: ['node.labels.zone==A', 'node.labels.pool==qa', 'node.role!=manager'], MaxReplicas: 1 } }));
  clock.advance(START_MS);
  const tasks = live('api');
  assert.deepEqual(tasks.map((t) => t.state).sort(), ['pending', 'running']);
  assert.equal(hostOf(tasks.find((t) => t.state === 'running')!.nodeId), 'sim-4', 'zone a, not the manager sim-1');
  assert.equal(tasks.find((t) => t.state === 'pending')!.err, 'no suitable node (scheduling constraints not satisfied on 5 nodes; max replicas per node limit exceed)');
});
