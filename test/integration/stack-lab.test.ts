/**
 * deploy/stack.yml on the lab: `docker stack deploy` with berth's image (support/berth-image.ts)
 * brings up two controllers on the manager and a proxy on the node labelled berth.edge=true;
 * an environment applied from outside becomes Ready and is served by the stack's nginx on port
 * 80 of that node; killing the leader's container hands leadership to the other replica within
 * the lease, a change still goes through, and Swarm restarts the killed one.
 * Stack `berth-test`, keys under /berth-stack, names stk-*; all removed at the end.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { run, runOk } from '../../src/lab/exec.js';
import { httpGet } from '../../src/lab/http.js';
import { createClient } from '../../src/store/client.js';
import { StatusStore } from '../../src/store/status.js';
import { ensureBerthImage } from '../support/berth-image.js';
import { requireLab } from '../support/lab.js';
import { releaseClaims } from '../support/claims.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const lab = requireLab();
const STACK = 'berth-test';
const PREFIX = '/berth-stack';
const ENV = 'stk-a';
const UPSTREAM = 'stk-a-web';
const EDGE = 2; // lab-2 runs the proxy
const LEASE_S = 10;
const etcd = createClient({ endpoints: lab.etcdEndpoints, prefix: PREFIX });
const statuses = new StatusStore(etcd);
const docker = lab.docker();
const dockerEnv = { ...process.env, DOCKER_HOST: lab.env.DOCKER_HOST };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-stack-test-'));
const timings: Record<string, number> = {};
let image = '';

const docker$ = (...args: string[]) => runOk('docker', args, { env: dockerEnv, timeoutMs: 180_000 });
const berth = (...args: string[]) =>
  runOk(process.execPath, [path.join(ROOT, 'bin/berth.js'), ...args], { env: { ...process.env, BERTH_PREFIX: PREFIX } });

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    const v = await fn().catch((err: unknown) => void (last = err));
    if (v !== undefined) {
      timings[what] = (Date.now() - start) / 1000;
      return v;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function envYaml(replicas: number): string {
  const file = path.join(dir, `env-${replicas}.yaml`);
  fs.writeFileSync(
    file,
    `apiVersion: berth.dev/v1alpha1
kind: EnvironmentGroup
metadata: { name: stk-g }
spec: { nodeSelector: { pool: lab } }
---
apiVersion: berth.dev/v1alpha1
kind: Environment
metadata: { name: ${ENV} }
spec:
  group: stk-g
  nodes: 1
  services:
    web: { image: ${lab.image('v1')}, replicas: ${replicas}, ports: [{ target: 8080 }] }
`,
  );
  return file;
}

interface Task { ID: string; NodeID: string; Status: { State: string; ContainerStatus?: { ContainerID?: string } }; DesiredState: string }
async function runningTasks(service: string): Promise<Task[]> {
  const tasks = (await docker.listTasks({ filters: { service: [`${STACK}_${service}`], 'desired-state': ['running'] } })) as Task[];
  return tasks.filter((t) => t.Status.State === 'running');
}

async function healthy(containerId: string, nodeIndex: number): Promise<boolean> {
  const info = await lab.nodeDocker(nodeIndex).getContainer(containerId).inspect();
  return info.State.Health?.Status === 'healthy';
}

/** The controller leading now: the election key with the lowest create revision; its identity starts with the container's host name (its id). */
async function leaderIdentity(): Promise<string | undefined> {
  const res = await etcd.etcd.getAll().prefix(`${PREFIX}/leader/election/controller/`).exec();
  const first = [...res.kvs].sort((a, b) => Number(a.create_revision) - Number(b.create_revision))[0];
  return first?.value.toString();
}

/** node:http, not fetch: fetch does not send a Host header of its own choosing. */
async function nginxBody(): Promise<string | undefined> {
  const res = await httpGet(`http://${lab.nodes[EDGE - 1]}:80/`, 3_000, { Host: UPSTREAM });
  return res.status === 200 ? res.body.trim() : undefined;
}

async function setEdgeLabel(on: boolean): Promise<void> {
  const node = (await docker.listNodes()).find((n) => n.Description.Hostname === lab.hostnames[EDGE - 1])!;
  const labels = { ...(node.Spec?.Labels ?? {}) } as Record<string, string>;
  if (on) labels['berth.edge'] = 'true';
  else delete labels['berth.edge'];
  await docker.getNode(node.ID).update({ _query: { version: node.Version.Index }, _body: { ...node.Spec, Labels: labels } } as never);
}

async function removeStack(): Promise<void> {
  await run('docker', ['stack', 'rm', STACK], { env: dockerEnv });
  await until('stack removed', async () => (((await docker.listServices({ filters: { label: [`com.docker.stack.namespace=${STACK}`] } } as never)) as unknown as unknown[]).length === 0 ? true : undefined), 60_000);
  // `docker stack rm` returns before its overlay network is gone; a deploy meanwhile fails with
  // "network not found" (seen after a run that was stopped half-way).
  const stackNetworks = async () => (await docker.listNetworks({ filters: { label: [`com.docker.stack.namespace=${STACK}`] } } as never)) as unknown as unknown[];
  await until('stack network removed', async () => ((await stackNetworks()).length === 0 ? true : undefined), 60_000);
}

async function cleanSlate(): Promise<void> {
  await removeStack();
  for (const s of (await docker.listServices()) as Array<{ ID: string; Spec: { Name: string } }>) {
    if (s.Spec.Name.startsWith('stk-')) await docker.getService(s.ID).remove();
  }
  await releaseClaims(docker, (env) => env.startsWith('stk-'));
  await setEdgeLabel(false);
  await etcd.etcd.delete().prefix(`${PREFIX}/`).exec();
}

before(async () => {
  await cleanSlate();
  image = (await ensureBerthImage(lab, (s) => console.log(s))).ref;
  await setEdgeLabel(true);
  const t0 = Date.now();
  await runOk('docker', ['stack', 'deploy', '-c', path.join(ROOT, 'deploy/stack.yml'), STACK], {
    env: {
      ...dockerEnv,
      BERTH_IMAGE: image,
      BERTH_ETCD_ENDPOINTS: lab.env.BERTH_LAB_ETCD_FROM_NODES,
      BERTH_PREFIX: PREFIX,
      BERTH_DOCKER_SOCKET: lab.dockerHost,
      BERTH_INSECURE_REGISTRIES: lab.registry,
    },
    timeoutMs: 120_000,
  });
  timings['stack deploy command'] = (Date.now() - t0) / 1000;
});

after(async () => {
  await run(process.execPath, [path.join(ROOT, 'bin/berth.js'), 'delete', 'env', ENV], { env: { ...process.env, BERTH_PREFIX: PREFIX } });
  // The stack's controller removes what it made; give it a moment before the stack goes.
  await until('env services removed', async () => (((await docker.listServices({ filters: { label: [`berth.env=${ENV}`] } } as never)) as unknown as unknown[]).length === 0 ? true : undefined), 30_000).catch(() => undefined);
  const logs = await run('docker', ['service', 'logs', '--tail', '15', `${STACK}_controller`], { env: dockerEnv });
  console.log(`controller logs (tail):\n${logs.stdout}`);
  await cleanSlate().catch((err: unknown) => console.log(`clean-up: ${String(err)}`));
  etcd.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`timings (s): ${JSON.stringify(timings)}`);
});

test('the stack runs two healthy controllers (one leader) and a healthy proxy on the edge node', async () => {
  await until('2 controllers healthy', async () => {
    const tasks = await runningTasks('controller');
    if (tasks.length !== 2) return undefined;
    const ok = await Promise.all(tasks.map((t) => healthy(t.Status.ContainerStatus!.ContainerID!, 1)));
    return ok.every(Boolean) ? true : undefined;
  }, 150_000);
  const proxies = await until('proxy healthy', async () => {
    const tasks = await runningTasks('proxy');
    if (tasks.length !== 1) return undefined;
    return (await healthy(tasks[0]!.Status.ContainerStatus!.ContainerID!, EDGE)) ? tasks : undefined;
  }, 150_000);
  const edgeNode = (await docker.listNodes()).find((n) => n.Description.Hostname === lab.hostnames[EDGE - 1])!;
  assert.equal(proxies[0]!.NodeID, edgeNode.ID);
  assert.ok(await leaderIdentity());
});

test('an environment applied from outside is Ready and served by the stack\'s nginx on port 80', async () => {
  await berth('apply', '-f', envYaml(1));
  await until('stk-a Ready', async () => ((await statuses.getStatus('Environment', ENV))?.phase === 'Ready' ? true : undefined));
  assert.equal(await until('nginx serves v1', nginxBody, 60_000), 'v1');
});

test('killing the leader\'s container: the other replica leads within the lease, a change goes through, Swarm restarts it', async () => {
  const leader = (await leaderIdentity())!;
  const tasks = await runningTasks('controller');
  const victim = tasks.find((t) => leader.startsWith(t.Status.ContainerStatus!.ContainerID!.slice(0, 12)));
  assert.ok(victim, `no controller task matches leader ${leader}`);
  const killedAt = Date.now();
  await docker$('kill', victim.Status.ContainerStatus!.ContainerID!);
  const next = await until('new leader', async () => {
    const id = await leaderIdentity();
    return id && id !== leader ? id : undefined;
  }, (LEASE_S + 20) * 1000);
  const handoverS = (Date.now() - killedAt) / 1000;
  console.log(`leader ${leader} killed; ${next} leads after ${handoverS.toFixed(1)} s`);
  assert.ok(handoverS <= LEASE_S + 5, `handover took ${handoverS} s`);

  await berth('apply', '-f', envYaml(2));
  await until('stk-a 2 endpoints', async () => {
    const s = await statuses.getStatus('Environment', ENV);
    return s?.phase === 'Ready' && s.services.web?.endpoints.length === 2 ? true : undefined;
  });
  assert.equal(await nginxBody(), 'v1');

  await until('killed controller replaced', async () => {
    const now = await runningTasks('controller');
    return now.length === 2 && !now.some((t) => t.ID === victim.ID) ? true : undefined;
  }, 60_000);
});

test('etcd paused for 30 s: the stack comes back by itself (a leader, a change served, every task healthy)', async () => {
  const state = JSON.parse(fs.readFileSync(path.join(lab.stateDir, 'state.json'), 'utf8')) as { processes: { etcd: { pid: number } } };
  const etcdPid = state.processes.etcd.pid;
  process.kill(etcdPid, 'SIGSTOP');
  try {
    await new Promise((r) => setTimeout(r, 30_000));
  } finally {
    process.kill(etcdPid, 'SIGCONT');
  }
  const resumedAt = Date.now();
  await until('a leader after the pause', leaderIdentity, 60_000);
  await berth('apply', '-f', envYaml(1));
  await until('stk-a back to 1 endpoint, Ready', async () => {
    const s = await statuses.getStatus('Environment', ENV);
    return s?.phase === 'Ready' && s.services.web?.endpoints.length === 1 ? true : undefined;
  }, 90_000);
  assert.equal(await until('nginx serves v1 after the pause', nginxBody, 30_000), 'v1');
  await until('2 controllers and the proxy healthy after the pause', async () => {
    const controllers = await runningTasks('controller');
    const proxies = await runningTasks('proxy');
    if (controllers.length !== 2 || proxies.length !== 1) return undefined;
    const ok = await Promise.all([
      ...controllers.map((t) => healthy(t.Status.ContainerStatus!.ContainerID!, 1)),
      healthy(proxies[0]!.Status.ContainerStatus!.ContainerID!, EDGE),
    ]);
    return ok.every(Boolean) ? true : undefined;
  }, 90_000);
  console.log(`back to normal ${((Date.now() - resumedAt) / 1000).toFixed(1)} s after etcd resumed`);
});
