import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { startSimServer, type SimServer } from '../../src/sim/server.js';
import { DockerodeSwarm } from '../../src/swarm/dockerode-swarm.js';
import { until } from '../support/proxy-harness.js';

/* The simulator on a temporary unix socket, driven through dockerode and berth's own Swarm adapter. No lab needed. */

const dir = mkdtempSync(join(tmpdir(), 'berth-sim-'));
const socketPath = join(dir, 'docker.sock');
let sim: SimServer;
let docker: Docker;

before(async () => {
  sim = await startSimServer({ socketPath, nodes: 9, nodeLabels: { pool: 'qa' }, latencyMs: 2, taskStartMs: 40, taskStopMs: 20, containerEvents: 'all' });
  docker = new Docker({ socketPath });
});
after(async () => {
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

const serviceSpec = (name: string, replicas: number) => ({
  Name: name,
  Labels: { 'berth.env': 'qa-1' },
  TaskTemplate: {
    ContainerSpec: { Image: '10.77.0.1:5000/web:v1', Labels: { 'berth.env': 'qa-1' } },
    Placement: { Constraints: ['node.labels.zone==b', 'node.labels.pool==qa'], MaxReplicas: 1 },
  },
  Mode: { Replicated: { Replicas: replicas } },
  EndpointSpec: { Mode: 'vip', Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishMode: 'host' }] },
});

test('ping, version and info look like a Swarm manager', async () => {
  assert.equal(String(await docker.ping()), 'OK');
  const v = await docker.version();
  assert.equal(v.ApiVersion, '1.41');
  const info = await docker.info();
  assert.equal(info.Swarm.LocalNodeState, 'active');
  assert.equal(info.Swarm.ControlAvailable, true);
  assert.equal(info.Swarm.NodeID, (await docker.getNode('sim-1').inspect()).ID);
});

test('a constrained service runs on the right nodes with host ports, read back through berth\'s adapter', async () => {
  const swarm = new DockerodeSwarm({ docker });
  const nodes = await swarm.listNodes();
  assert.equal(nodes.length, 9);
  const zoneB = new Set(nodes.filter((n) => n.labels.zone === 'b').map((n) => n.id));
  assert.equal(zoneB.size, 3);
  const id = await swarm.createService(serviceSpec('qa-1_api', 3) as never);
  await until('3 tasks running', async () => (await swarm.listTasks([id])).filter((t) => t.state === 'running').length === 3);
  const tasks = await swarm.listTasks([id]);
  assert.deepEqual(new Set(tasks.map((t) => t.nodeId)), zoneB, 'one task on each zone-b node (MaxReplicas 1)');
  for (const t of tasks) {
    assert.equal(t.desiredState, 'running');
    assert.equal(t.ports.length, 1);
    assert.equal(t.ports[0]!.target, 8080);
    assert.ok(t.ports[0]!.published >= 32768);
  }
  const [svc] = await swarm.listServices('qa-1');
  assert.equal(svc?.name, 'qa-1_api');
  assert.equal(svc?.replicas, 3);

  // A fourth replica has no zone-b node left: it stays pending with Swarm's reason.
  await swarm.scaleService(id, svc!.version, 4);
  await until('a pending task', async () => (await docker.listTasks({ filters: { service: [id], 'desired-state': ['running'] } })).some((t) => t.Status?.State === 'pending' && t.Status?.Err));
  const pending = (await docker.listTasks({ filters: { service: ['qa-1_api'] } })).find((t) => t.Status?.State === 'pending');
  assert.match(String(pending?.Status?.Err), /^no suitable node \(scheduling constraints not satisfied on 6 nodes; max replicas per node limit exceed\)$/);
  await swarm.removeService(id);
});

test('an update with a stale version fails with 500 "update out of sequence"; a fresh one raises Version.Index', async () => {
  const created = await docker.createService(serviceSpec('qa-1_web', 1) as never);
  const service = docker.getService((created as unknown as { id: string }).id);
  const v1 = (await service.inspect()).Version.Index as number;
  await service.update({ _query: { version: v1 }, _body: serviceSpec('qa-1_web', 2) } as never);
  const v2 = (await service.inspect()).Version.Index as number;
  assert.ok(v2 > v1);
  await assert.rejects(
    service.update({ _query: { version: v1 }, _body: serviceSpec('qa-1_web', 3) } as never),
    (err: { statusCode?: number; json?: { message?: string } }) => err.statusCode === 500 && /update out of sequence/.test(err.json?.message ?? ''),
  );
  await service.remove();
  await assert.rejects(service.inspect(), (err: { statusCode?: number }) => err.statusCode === 404);
});

test('the events stream delivers service create, update and remove, and berth\'s watch reads container events with their labels', async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  const swarm = new DockerodeSwarm({ docker });
  const seenByBerth: { type: string; action: string; env?: string }[] = [];
  const ac = new AbortController();
  const watching = swarm.watchEvents((e) => seenByBerth.push({ type: e.type, action: e.action, env: e.attributes['berth.env'] }), ac.signal);

  const id = await swarm.createService(serviceSpec('qa-1_ev', 1) as never);
  const svc = await swarm.inspectService(id);
  await swarm.scaleService(id, svc!.version, 2);
  await until('2 running', async () => (await swarm.listTasks([id])).filter((t) => t.state === 'running').length === 2);
  await swarm.removeService(id);

  // A stream opened afterwards with `since` and `until` replays the kept events, filtered, then ends.
  const stream = await docker.getEvents({ since, until: Math.ceil(Date.now() / 1000) + 1, filters: { type: ['service'], service: ['qa-1_ev'] } } as never);
  let text = '';
  for await (const chunk of stream as unknown as AsyncIterable<Buffer>) text += chunk.toString();
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { Type: string; Action: string; scope: string; timeNano: number; Actor: { ID: string; Attributes: Record<string, string> } });
  assert.deepEqual(lines.map((e) => [e.Type, e.Action, e.Actor.ID, e.Actor.Attributes.name, e.scope]), [
    ['service', 'create', id, 'qa-1_ev', 'swarm'],
    ['service', 'update', id, 'qa-1_ev', 'swarm'],
    ['service', 'remove', id, 'qa-1_ev', 'swarm'],
  ]);
  assert.deepEqual(lines[1]!.Actor.Attributes, { name: 'qa-1_ev', 'replicas.old': '1', 'replicas.new': '2' });

  await until('berth saw the remove', () => seenByBerth.some((e) => e.type === 'service' && e.action === 'remove'));
  ac.abort();
  await watching;
  const starts = seenByBerth.filter((e) => e.type === 'container' && e.action === 'start');
  assert.equal(starts.length, 2);
  assert.ok(starts.every((e) => e.env === 'qa-1'), 'container events carry the container labels berth sets');
});

test('the running tasks listed again: a task at the same version is not parsed again, one that changed state is read anew', async () => {
  const swarm = new DockerodeSwarm({ docker });
  const id = await swarm.createService({ ...serviceSpec('qa-1_lister', 2), EndpointSpec: { Mode: 'vip', Ports: [] } } as never);
  const mine = async () => (await swarm.listRunningTasks()).filter((t) => t.serviceId === id);
  const starting = await mine();
  assert.equal(starting.length, 2);
  assert.ok(starting.every((t) => t.state !== 'running'), 'listed before they started');
  await until('both running', async () => (await mine()).every((t) => t.state === 'running'));
  const first = await mine();
  const again = await mine();
  assert.deepEqual(first.map((t) => t.state), ['running', 'running'], 'a changed task is read anew');
  assert.ok(again.every((t, i) => t === first[i]), 'unchanged tasks: the same objects, not parsed again');
  await swarm.removeService(id);
});

test('a label update starts from the node spec read at the version it names: no read of its own, and a stale one is refused', async () => {
  const requests: string[] = [];
  const swarm = new DockerodeSwarm({ docker, onApiRequest: (op) => requests.push(op) });
  const node = (await swarm.listNodes()).find((n) => n.hostname === 'sim-4')!;
  requests.length = 0;
  await swarm.updateNodeLabels(node.id, node.version, { ...node.labels, team: 'a' });
  assert.deepEqual(requests, ['updateNode'], 'the listed spec is the one at that version');
  const after = (await swarm.inspectNode(node.id))!;
  assert.equal(after.labels.team, 'a');
  assert.equal(after.role, node.role);
  assert.equal(after.availability, node.availability);
  // A version the adapter never read: the spec is read first, and Docker judges the version.
  requests.length = 0;
  await assert.rejects(swarm.updateNodeLabels(node.id, node.version, { ...node.labels }));
  assert.equal((await swarm.inspectNode(node.id))!.labels.team, 'a', 'the stale update changed nothing');
  await swarm.updateNodeLabels(after.id, after.version, { ...node.labels });
  assert.equal((await swarm.inspectNode(node.id))!.labels.team, undefined);
});

test('nodes and services read by id in one call each: only those asked for, an absent id left out, counted under their own operations', async () => {
  const requests: string[] = [];
  const swarm = new DockerodeSwarm({ docker, onApiRequest: (op) => requests.push(op) });
  const nodes = await swarm.listNodes();
  const wanted = nodes.filter((n) => ['sim-3', 'sim-4', 'sim-5'].includes(n.hostname)).map((n) => n.id);
  const absent = 'x'.repeat(25);
  requests.length = 0;
  const read = await swarm.listNodesById([...wanted, absent]);
  assert.deepEqual(read.map((n) => n.hostname).sort(), ['sim-3', 'sim-4', 'sim-5']);
  const prefix = wanted[0]!.slice(0, 4);
  assert.deepEqual(
    (await swarm.listNodesById([prefix])).map((n) => n.id).sort(),
    nodes.filter((n) => n.id.startsWith(prefix)).map((n) => n.id).sort(),
    'an id matches as a prefix, as in Docker',
  );
  // A node read by a list is read at its version: a label update needs no read of its own.
  const node = read.find((n) => n.hostname === 'sim-5')!;
  await swarm.updateNodeLabels(node.id, node.version, { ...node.labels, team: 'b' });
  assert.deepEqual(requests, ['listNodesById', 'listNodesById', 'updateNode']);
  const [updated] = await swarm.listNodesById([node.id]);
  assert.equal(updated!.labels.team, 'b');
  await swarm.updateNodeLabels(node.id, updated!.version, { ...node.labels });

  const a = await swarm.createService(serviceSpec('qa-1_byid-a', 0) as never);
  const b = await swarm.createService({ ...serviceSpec('ops_byid-b', 0), Labels: {} } as never);
  requests.length = 0;
  const services = await swarm.listServicesById([a, b, absent]);
  assert.deepEqual(services.map((s) => s.name).sort(), ['ops_byid-b', 'qa-1_byid-a'], "berth's and foreign services alike");
  await swarm.removeService(b);
  assert.deepEqual((await swarm.listServicesById([a, b])).map((s) => s.id), [a], 'a removed service is absent from the answer');
  assert.deepEqual(requests, ['listServicesById', 'removeService', 'listServicesById']);
  await swarm.removeService(a);
});
