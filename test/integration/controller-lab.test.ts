/**
 * The controller against the real lab (etcd + 3-node Swarm). Runs `berth controller` as a child
 * process, writes specs with the store, and checks the Swarm. Names are prefixed `ctl-`; the
 * group selects pool=lab. Run under `flock /tmp/berth-lab-tests.lock` (the Swarm is shared).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parseResource } from '../../src/api/resource.js';
import type { Environment, EnvironmentGroup, EnvironmentStatus } from '../../src/api/index.js';
import { createClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { StatusStore } from '../../src/store/status.js';
import { requireLab } from '../support/lab.js';
import { releaseClaims } from '../support/claims.js';
import { recordingUntil } from '../support/poll.js';

const lab = requireLab();
const etcd = createClient({ endpoints: lab.etcdEndpoints, prefix: '/berth' });
const store = new ResourceStore(etcd);
const statuses = new StatusStore(etcd);
const docker = lab.docker();
const GROUP = 'ctl-g';
const LOG = `/tmp/berth-ctl-test-${process.pid}.log`;
const timings: Record<string, number> = {};

function groupSpec(spare = 0): EnvironmentGroup {
  return parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: GROUP }, spec: { nodeSelector: { pool: 'lab' }, spare } }) as EnvironmentGroup;
}

function envSpec(name: string, nodes: number, replicas: number, tag: 'v1' | 'v2' = 'v1'): Environment {
  return parseResource({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name },
    spec: { group: GROUP, nodes, services: { web: { image: lab.image(tag), replicas, ports: [{ target: 8080 }], placement: { maxPerNode: 1 } } } },
  }) as Environment;
}

let nextPort = 19470 + (process.pid % 200);
function startController(): ChildProcess {
  const out = openSync(LOG, 'a');
  const code = "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(['node', 'berth', ...process.argv.slice(1)]); })";
  return spawn(process.execPath, ['--import', 'tsx', '-e', code, 'controller', '--metrics-addr', `127.0.0.1:${nextPort++}`, '--resync', '10s'], {
    env: process.env,
    stdio: ['ignore', out, out],
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

async function stopController(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited(child);
  clearTimeout(t);
}

const until = recordingUntil(timings, 500);

async function heldBy(env: string): Promise<string[]> {
  const nodes = await docker.listNodes();
  return nodes.filter((n) => n.Spec?.Labels?.['berth.env'] === env).map((n) => n.Description.Hostname as string).sort();
}

async function servicesOf(env: string): Promise<Array<{ ID: string; Spec: { Name: string; Mode: { Replicated: { Replicas: number } } } }>> {
  return (await docker.listServices({ filters: { label: [`berth.env=${env}`] } } as never)) as never;
}

async function runningTasks(serviceName: string): Promise<Array<{ NodeID: string }>> {
  const tasks = (await docker.listTasks({ filters: { service: [serviceName], 'desired-state': ['running'] } })) as Array<{ NodeID: string; Status: { State: string } }>;
  return tasks.filter((t) => t.Status.State === 'running');
}

async function status(env: string): Promise<EnvironmentStatus | undefined> {
  return statuses.getStatus('Environment', env);
}

async function httpBody(endpoint: string): Promise<string> {
  const res = await fetch(`http://${endpoint}/`, { signal: AbortSignal.timeout(3_000) });
  return (await res.text()).trim();
}

/** Removes every ctl- trace (a failed earlier run may have left some). */
async function cleanSlate(): Promise<void> {
  for (const e of await store.list('Environment')) if (e.metadata.name.startsWith('ctl-')) await store.delete('Environment', e.metadata.name);
  for (const s of (await docker.listServices()) as Array<{ ID: string; Spec: { Name: string } }>) {
    if (s.Spec.Name.startsWith('ctl-')) await docker.getService(s.ID).remove();
  }
  await releaseClaims(docker, (env) => env.startsWith('ctl-'));
  for (const name of (await statuses.listStatuses('Environment')).keys()) if (name.startsWith('ctl-')) await statuses.deleteStatus('Environment', name);
  await store.delete('EnvironmentGroup', GROUP, { force: true });
}

let controller: ChildProcess;

before(async () => {
  await cleanSlate();
  await store.apply(groupSpec());
  controller = startController();
});

after(async () => {
  if (controller) await stopController(controller);
  await cleanSlate().catch(() => undefined);
  etcd.close();
  console.log(`convergence times (s): ${JSON.stringify(timings)}\ncontroller log: ${LOG}`);
});

test('(a) nodes 2, 2 replicas maxPerNode 1: 2 nodes labelled, tasks on 2 nodes, Ready, endpoints answer v1', async () => {
  await store.apply(envSpec('ctl-a', 2, 2));
  const st = await until('a: Ready', async () => {
    const s = await status('ctl-a');
    return s?.phase === 'Ready' && s.services.web?.endpoints.length === 2 ? s : undefined;
  });
  assert.equal((await heldBy('ctl-a')).length, 2);
  const tasks = await runningTasks('ctl-a_web');
  assert.equal(tasks.length, 2);
  assert.equal(new Set(tasks.map((t) => t.NodeID)).size, 2);
  for (const ep of st.services.web!.endpoints) assert.equal(await httpBody(ep), 'v1', `endpoint ${ep}`);
});

test('(b) grow to 3 nodes / 3 replicas on 3 distinct nodes; back to 1/1 releases 2 labels', async () => {
  await store.apply(envSpec('ctl-a', 3, 3));
  await until('b: 3 replicas on 3 nodes', async () => {
    const t = await runningTasks('ctl-a_web');
    return t.length === 3 && new Set(t.map((x) => x.NodeID)).size === 3 && (await heldBy('ctl-a')).length === 3;
  });
  await store.apply(envSpec('ctl-a', 1, 1));
  await until('b: shrunk to 1', async () => {
    const s = await status('ctl-a');
    return (await heldBy('ctl-a')).length === 1 && s?.phase === 'Ready' && s.services.web?.runningReplicas === 1;
  });
});

test('(c) two envs never share; a third is Degraded; Ready once another is deleted', async () => {
  await store.apply(envSpec('ctl-b', 2, 1));
  await until('c: ctl-b Ready', async () => (await status('ctl-b'))?.phase === 'Ready');
  const a = await heldBy('ctl-a');
  const b = await heldBy('ctl-b');
  assert.equal(a.length + b.length, 3);
  assert.ok(!a.some((h) => b.includes(h)), `shared: ${a} / ${b}`);
  await store.apply(envSpec('ctl-c', 1, 1));
  const deg = await until('c: ctl-c Degraded', async () => {
    const s = await status('ctl-c');
    return s?.phase === 'Degraded' ? s : undefined;
  });
  assert.ok(deg.conditions.some((c) => c.message.includes('missing 1 of 1')), JSON.stringify(deg.conditions));
  await store.markDeleted('ctl-b'); // what `berth delete env` does
  await until('c: ctl-c Ready after ctl-b deleted', async () => (await status('ctl-c'))?.phase === 'Ready');
  assert.deepEqual(await heldBy('ctl-b'), []);
  await store.markDeleted('ctl-c');
});

test('(d) a hand scale is reverted; deleting an env removes its services and labels; a foreign service survives', async () => {
  const [svc] = await servicesOf('ctl-a');
  const s = await docker.getService(svc!.ID).inspect();
  await docker.getService(svc!.ID).update({ _query: { version: s.Version.Index }, _body: { ...s.Spec, Mode: { Replicated: { Replicas: 3 } } } } as never);
  await until('d: scale reverted', async () => (await servicesOf('ctl-a'))[0]?.Spec.Mode.Replicated.Replicas === 1);
  const foreign = await docker.createService({
    Name: 'ctl-a_foreign',
    Labels: { owner: 'someone-else' },
    TaskTemplate: { ContainerSpec: { Image: lab.image('v1') } },
    Mode: { Replicated: { Replicas: 0 } },
  });
  try {
    await store.markDeleted('ctl-a');
    await until('d: ctl-a removed', async () => (await servicesOf('ctl-a')).length === 0 && (await heldBy('ctl-a')).length === 0 && !(await status('ctl-a')));
    const names = ((await docker.listServices()) as Array<{ Spec: { Name: string } }>).map((x) => x.Spec.Name);
    assert.ok(names.includes('ctl-a_foreign'), 'the service berth does not own survived');
  } finally {
    await docker.getService((foreign as unknown as { id: string }).id).remove();
  }
});

test('(e) SIGKILL mid-reconcile and restart: converges with no duplicate service', async () => {
  await store.apply(envSpec('ctl-e', 2, 2));
  // Kill as soon as the reconcile has started changing the Swarm.
  await until('e: first change seen', async () => (await heldBy('ctl-e')).length > 0 || (await servicesOf('ctl-e')).length > 0, 30_000);
  controller.kill('SIGKILL');
  await exited(controller);
  controller = startController();
  await until('e: Ready after restart', async () => (await status('ctl-e'))?.phase === 'Ready');
  const svcs = await servicesOf('ctl-e');
  assert.equal(svcs.length, 1, svcs.map((x) => x.Spec.Name).join(','));
  assert.equal((await heldBy('ctl-e')).length, 2);
});

test('(f) a stopped worker node: the claim moves to the free node', async () => {
  const held = await heldBy('ctl-e');
  const nodeIndex = lab.hostnames.findIndex((h) => held.includes(h) && h !== lab.hostnames[0]) + 1;
  assert.ok(nodeIndex > 1, `a worker among ${held}`);
  const lost = lab.hostnames[nodeIndex - 1]!;
  await lab.stopNode(nodeIndex);
  try {
    const now = await until(
      'f: claim moved off the stopped node',
      async () => {
        const h = await heldBy('ctl-e');
        const s = await status('ctl-e');
        return h.length === 2 && !h.includes(lost) && s?.phase === 'Ready' ? h : undefined;
      },
      90_000,
    );
    assert.ok(!now.includes(lost));
  } finally {
    await lab.startNode(nodeIndex);
  }
  await store.markDeleted('ctl-e');
  await until('f: ctl-e removed', async () => (await servicesOf('ctl-e')).length === 0 && (await heldBy('ctl-e')).length === 0);
});
