/** The lab itself: a multi-node Swarm that runs the lab images from the lab registry, offline. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { requireLab } from '../support/lab.js';
import { httpGet } from '../../src/lab/http.js';
import { labUp, readLab } from '../../src/lab/index.js';
import { waitFor } from '../../src/lab/wait.js';

const lab = requireLab();
const docker = lab.docker();

interface NodeInfo {
  ID: string;
  Description?: { Hostname?: string };
  Status?: { State?: string; Addr?: string };
  Spec: { Labels?: Record<string, string>; Role?: string };
}

test('the swarm has one Ready node per lab node, distinct hostnames lab-1.., labelled pool=lab and a zone', async () => {
  const nodes = (await docker.listNodes()) as NodeInfo[];
  const hostnames = nodes.map((n) => n.Description?.Hostname).sort();
  assert.deepEqual(hostnames, [...lab.hostnames].sort());
  assert.equal(new Set(hostnames).size, lab.nodes.length);
  for (const n of nodes) {
    assert.equal(n.Status?.State, 'ready', `${n.Description?.Hostname} is ${n.Status?.State}`);
    assert.equal(n.Spec.Labels?.pool, 'lab');
    assert.match(n.Spec.Labels?.zone ?? '', /^[a-z]$/);
    assert.ok(lab.nodes.includes(n.Status?.Addr ?? ''), `node address ${n.Status?.Addr}`);
  }
});

test('a service of web:v1 published in host mode answers v1 at its node address', async (t) => {
  const name = `labtest-web-${process.pid}`;
  const svc = await docker.createService({
    Name: name,
    Labels: { 'berth.lab.test': 'true' },
    TaskTemplate: { ContainerSpec: { Image: lab.image('v1') }, RestartPolicy: { Condition: 'any' } },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishMode: 'host' }] },
  });
  t.after(async () => {
    await svc.remove().catch(() => {});
  });
  const nodes = (await docker.listNodes()) as NodeInfo[];
  const task = await waitFor(
    `a running task of ${name} with a published port`,
    async () => {
      const tasks = (await docker.listTasks({ filters: JSON.stringify({ service: [name], 'desired-state': ['running'] }) })) as Array<{
        NodeID: string;
        Status: { State: string; PortStatus?: { Ports?: Array<{ TargetPort: number; PublishedPort: number }> } };
      }>;
      return tasks.find((x) => x.Status.State === 'running' && x.Status.PortStatus?.Ports?.some((p) => p.TargetPort === 8080));
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  const port = task.Status.PortStatus!.Ports!.find((p) => p.TargetPort === 8080)!.PublishedPort;
  const addr = nodes.find((n) => n.ID === task.NodeID)?.Status?.Addr;
  assert.ok(addr && lab.nodes.includes(addr), `task node address ${addr}`);
  const res = await waitFor(`HTTP 200 from ${addr}:${port}`, async () => {
    const r = await httpGet(`http://${addr}:${port}/`, 2_000);
    return r.status === 200 ? r : undefined;
  }, { timeoutMs: 30_000, intervalMs: 300 });
  assert.equal(res.body, 'v1');
  const health = await httpGet(`http://${addr}:${port}/healthz`, 2_000);
  assert.equal(health.status, 200);
});

test('no dockerd ever tried to reach Docker Hub', () => {
  for (const host of lab.hostnames) {
    const log = fs.readFileSync(path.join(lab.stateDir, 'nodes', host, 'dockerd.log'), 'utf8');
    assert.doesNotMatch(log, /registry-1\.docker\.io|index\.docker\.io/, `${host}'s dockerd log mentions Docker Hub`);
  }
});

test('lab up on a running lab is idempotent: no changes, same pids', async () => {
  const before = readLab(lab.stateDir)!.state.processes;
  const report = await labUp({ stateDir: lab.stateDir });
  assert.deepEqual(report.changes, []);
  const after = readLab(lab.stateDir)!.state.processes;
  assert.deepEqual(
    Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v.pid])),
    Object.fromEntries(Object.entries(before).map(([k, v]) => [k, v.pid])),
  );
});

test('a stopped worker dockerd goes Down in the swarm and comes back Ready when started', async () => {
  // A lab without a worker fails here rather than skipping: a skipped test proves nothing.
  const worker = ((await docker.listNodes()) as NodeInfo[]).find((n) => n.Spec.Role === 'worker');
  assert.ok(worker, `the lab needs a worker node for this test; it has ${lab.nodes.length} node(s), all managers (berth lab up --nodes 3)`);
  const host = worker.Description?.Hostname ?? '';
  const i = lab.hostnames.indexOf(host) + 1;
  assert.ok(i > 0, `worker ${host} is not one of the lab's nodes (${lab.hostnames.join(', ')})`);
  const stateOf = async () => ((await docker.listNodes()) as NodeInfo[]).find((n) => n.Description?.Hostname === host)?.Status?.State;
  await lab.stopNode(i);
  try {
    await waitFor(`${host} down`, async () => (await stateOf()) === 'down', { timeoutMs: 60_000, intervalMs: 500 });
  } finally {
    await lab.startNode(i);
  }
  await waitFor(`${host} ready again`, async () => (await stateOf()) === 'ready', { timeoutMs: 60_000, intervalMs: 500 });
});
