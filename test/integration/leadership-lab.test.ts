/**
 * Leadership, fencing, deadlines and health on the real lab, with real faults: a leader paused
 * past its lease, etcd paused, etcd killed and restarted, the manager's dockerd paused. Each fault is bounded and undone
 * in a `finally` (SIGCONT), because the lab is shared. Names are prefixed `lead-`. Run under
 * `flock /tmp/berth-lab-tests.lock`.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { NotLeaderError } from '../../src/api/errors.js';
import { parseResource } from '../../src/api/resource.js';
import type { Environment, EnvironmentGroup } from '../../src/api/index.js';
import { createClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { StatusStore } from '../../src/store/status.js';
import { labPid, requireLab } from '../support/lab.js';
import { releaseClaims } from '../support/claims.js';
import { recordingUntil, sleep } from '../support/poll.js';

const lab = requireLab();
const etcd = createClient({ endpoints: lab.etcdEndpoints, prefix: '/berth', callTimeoutMs: 3_000 });
const store = new ResourceStore(etcd);
const statuses = new StatusStore(etcd);
const docker = lab.docker();
const GROUP = 'lead-g';
const ENV = 'lead-a';
const SERVICE = `${ENV}_web`;
const LOG = `/tmp/berth-lead-test-${process.pid}.log`;
const figures: Record<string, number | string> = {};

function groupSpec(): EnvironmentGroup {
  return parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: GROUP }, spec: { nodeSelector: { pool: 'lab' } } }) as EnvironmentGroup;
}

function envSpec(tag: 'v1' | 'v2'): Environment {
  return parseResource({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: ENV },
    spec: { group: GROUP, nodes: 1, services: { web: { image: lab.image(tag), replicas: 1, ports: [{ target: 8080 }] } } },
  }) as Environment;
}

interface Controller {
  child: ChildProcess;
  port: number;
}

let nextPort = 19700 + (process.pid % 200);
function startController(extra: string[] = []): Controller {
  const out = openSync(LOG, 'a');
  const port = nextPort++;
  const code = "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(['node', 'berth', ...process.argv.slice(1)]); })";
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code, 'controller', '--metrics-addr', `127.0.0.1:${port}`, '--resync', '10s', ...extra], {
    env: process.env,
    stdio: ['ignore', out, out],
  });
  return { child, port };
}

const alive = (c: Controller) => c.child.exitCode === null && c.child.signalCode === null;

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

async function stopController(c: Controller): Promise<number> {
  const start = Date.now();
  c.child.kill('SIGCONT');
  c.child.kill('SIGTERM');
  const t = setTimeout(() => c.child.kill('SIGKILL'), 60_000);
  await exited(c.child);
  clearTimeout(t);
  return Date.now() - start;
}

const until = recordingUntil(figures, 250);

/** The sum of a metric's samples whose labels include `labels` (0 when absent). */
async function metric(c: Controller, name: string, labels: Record<string, string> = {}): Promise<number> {
  const body = await (await fetch(`http://127.0.0.1:${c.port}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
  let sum = 0;
  for (const line of body.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

const MUTATIONS = ['createService', 'updateService', 'removeService', 'updateNode'];
async function mutations(c: Controller): Promise<number> {
  let n = 0;
  for (const operation of MUTATIONS) n += await metric(c, 'berth_docker_api_requests_total', { operation });
  return n;
}

async function leads(c: Controller): Promise<boolean> {
  return (await metric(c, 'berth_leader')) === 1;
}

async function healthz(c: Controller): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${c.port}/healthz`, { signal: AbortSignal.timeout(2_000) });
  return { status: res.status, body: await res.text() };
}

/** The service's image and its spec as JSON (its version also moves with Swarm's own update status). */
async function service(): Promise<{ image: string; spec: string } | undefined> {
  const list = (await docker.listServices({ filters: { name: [SERVICE] } } as never)) as unknown as Array<{ Spec: { Name: string; TaskTemplate: { ContainerSpec: { Image: string } } } }>;
  const s = list.find((x) => x.Spec.Name === SERVICE);
  return s && { image: s.Spec.TaskTemplate.ContainerSpec.Image, spec: JSON.stringify(s.Spec) };
}

async function runs(tag: 'v1' | 'v2'): Promise<boolean> {
  const s = await service();
  const ready = (await statuses.getStatus('Environment', ENV))?.phase === 'Ready';
  return !!s && s.image.includes(`/web:${tag}`) && ready;
}

/** The pid of a lab process (etcd, dockerd-1, ...) from the lab's state file. */
async function cleanSlate(): Promise<void> {
  await store.delete('Environment', ENV).catch(() => undefined);
  for (const s of (await docker.listServices()) as Array<{ ID: string; Spec: { Name: string } }>) {
    if (s.Spec.Name.startsWith('lead-')) await docker.getService(s.ID).remove();
  }
  await releaseClaims(docker, (env) => env.startsWith('lead-'));
  await statuses.deleteStatus('Environment', ENV).catch(() => undefined);
  await store.delete('EnvironmentGroup', GROUP, { force: true }).catch(() => undefined);
}

const controllers: Controller[] = [];

before(async () => {
  await cleanSlate();
  await store.apply(groupSpec());
  await store.apply(envSpec('v1'));
});

after(async () => {
  for (const c of controllers) if (alive(c)) await stopController(c);
  const cleaner = startController();
  try {
    await store.markDeleted(ENV);
    await until('cleanup: services removed', async () => !(await service()));
  } finally {
    await stopController(cleaner);
  }
  await cleanSlate();
  etcd.close();
  console.log(`leadership-lab figures (s): ${JSON.stringify(figures)}`);
});

test('a fenced write with a stale token is refused with NotLeaderError and writes nothing', async () => {
  const key = '/berth/lead-test/fence';
  const leaderKey = '/berth/lead-test/leader';
  await etcd.etcd.put(leaderKey).value('me');
  const createRevision = (await etcd.etcd.get(leaderKey).exec()).kvs[0]!.create_revision;
  let lost: Error | undefined;
  const fenced = etcd.fenced({ token: () => ({ key: leaderKey, createRevision }), lost: (err) => (lost = err) });
  try {
    await fenced.put(`put ${key}`, fenced.etcd.put(key).value('first'));
    assert.equal(await etcd.etcd.get(key).string(), 'first');
    // Another leader's key now (deleted and created again: a new create revision).
    await etcd.etcd.delete().key(leaderKey);
    await etcd.etcd.put(leaderKey).value('other');
    await assert.rejects(() => fenced.put(`put ${key}`, fenced.etcd.put(key).value('second')), NotLeaderError);
    await assert.rejects(() => fenced.delete(`delete ${key}`, fenced.etcd.delete().key(key)), NotLeaderError);
    assert.ok(lost instanceof NotLeaderError, 'the stale fence is reported, so the term ends');
    assert.equal(await etcd.etcd.get(key).string(), 'first', 'nothing written');
  } finally {
    await etcd.etcd.delete().prefix('/berth/lead-test/');
  }
});

test('(1) two controllers, the leader paused past its lease: the standby takes over and converges; resumed, the ex-leader makes no Docker mutation and campaigns again', async () => {
  const a = startController();
  const b = startController();
  controllers.push(a, b);
  const [leader, standby] = await until('1: one leader elected', async () => {
    const [la, lb] = [await leads(a), await leads(b)];
    if (la === lb) return undefined;
    return la ? [a, b] : [b, a];
  });
  await until('1: Ready v1', () => runs('v1'), 90_000);
  const before = await mutations(leader);

  leader.child.kill('SIGSTOP');
  const pausedAt = Date.now();
  try {
    await store.apply(envSpec('v2'));
    await until('1: takeover (s after pause)', () => leads(standby), 40_000);
    figures['1: takeover after pause'] = (Date.now() - pausedAt) / 1000;
    await until('1: the new leader converged to v2', () => runs('v2'), 90_000);
    // Keep the ex-leader paused for at least 15 s in all.
    await sleep(Math.max(0, 15_000 - (Date.now() - pausedAt)));
  } finally {
    leader.child.kill('SIGCONT');
  }
  const spec = (await service())!.spec;
  await until('1: the ex-leader stepped down', async () => !(await leads(leader)), 20_000);
  // Its in-flight reconciles resume at once: any mutation they could make comes within this.
  await sleep(5_000);
  assert.ok(alive(leader) && alive(standby), 'both processes still run');
  assert.equal(await mutations(leader), before, 'the resumed ex-leader issued no Docker mutation');
  assert.equal((await service())!.spec, spec, 'and the service\'s spec was not changed after the resume');
  assert.equal(await leads(leader), false);
  assert.equal(await leads(standby), true, 'exactly one leads');
  assert.match(readFileSync(LOG, 'utf8'), /leadership lost/);
  const exLeaderLines = readFileSync(LOG, 'utf8').split('\n').filter((l) => l.includes(`"pid":${leader.child.pid},`));
  figures['1: reconciles of the ex-leader stopped by the fence after resume'] = exLeaderLines.filter((l) => l.includes('not the leader')).length;
});

test('(2) etcd paused 30 s: both controllers survive, exactly one leads afterwards, a change made after it resumes converges', async () => {
  const [a, b] = controllers;
  assert.ok(a && b);
  const pid = labPid(lab, 'etcd');
  process.kill(pid, 'SIGSTOP');
  const pausedAt = Date.now();
  try {
    await until('2: the leader stepped down while etcd was paused', async () => !(await leads(a)) && !(await leads(b)), 30_000);
    figures['2: step-down after etcd pause'] = (Date.now() - pausedAt) / 1000;
    await sleep(Math.max(0, 30_000 - (Date.now() - pausedAt)));
    assert.ok(alive(a) && alive(b), 'neither exited while etcd was paused');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await oneLeadsAndConverges('2', a, b, 'v1');
});

/** After an etcd outage: a leader again, a change converges, both replicas alive, exactly one leads. */
async function oneLeadsAndConverges(label: string, a: Controller, b: Controller, tag: 'v1' | 'v2'): Promise<void> {
  const backAt = Date.now();
  await until(`${label}: a leader again after etcd came back`, async () => (await leads(a)) !== (await leads(b)), 60_000);
  figures[`${label}: re-election after etcd came back`] = (Date.now() - backAt) / 1000;
  await store.apply(envSpec(tag));
  await until(`${label}: converged to ${tag}`, () => runs(tag), 90_000);
  await sleep(3_000);
  assert.ok(alive(a) && alive(b), 'both still run');
  assert.equal(Number(await leads(a)) + Number(await leads(b)), 1, 'exactly one leads');
}

test('(2b) etcd killed (-9) and started again 15 s later: both controllers survive, exactly one leads afterwards, a change converges', async () => {
  const [a, b] = controllers;
  assert.ok(a && b);
  process.kill(labPid(lab, 'etcd'), 'SIGKILL');
  const killedAt = Date.now();
  try {
    await until('2b: the leader stepped down with etcd gone', async () => !(await leads(a)) && !(await leads(b)), 30_000);
    figures['2b: step-down after etcd kill'] = (Date.now() - killedAt) / 1000;
    await sleep(Math.max(0, 15_000 - (Date.now() - killedAt)));
    assert.ok(alive(a) && alive(b), 'neither exited while etcd was down');
  } finally {
    // `berth lab up` starts what of the lab is not running: here, etcd on its data directory.
    execFileSync(process.execPath, ['bin/berth.js', 'lab', 'up'], { stdio: 'ignore', timeout: 120_000 });
  }
  await oneLeadsAndConverges('2b', a, b, 'v2');
});

test('(3) the manager\'s dockerd paused 40 s: calls time out and are counted, /healthz reports the stall, SIGTERM finishes within the drain timeout; a new controller converges after', async () => {
  for (const c of controllers) if (alive(c)) await stopController(c);
  const c = startController(['--docker-timeout', '2s', '--stall-timeout', '12s', '--drain-timeout', '5s']);
  controllers.push(c);
  await until('3: leader', () => leads(c), 40_000);
  await until('3: Ready v2', () => runs('v2'), 60_000);
  assert.equal((await healthz(c)).status, 200);

  const pid = labPid(lab, 'dockerd-1');
  process.kill(pid, 'SIGSTOP');
  const pausedAt = Date.now();
  try {
    await store.apply(envSpec('v1'));
    const stalled = await until('3: /healthz reports the stall', async () => {
      const h = await healthz(c);
      return h.status === 500 ? h.body : undefined;
    }, 28_000);
    figures['3: stall reported after dockerd pause'] = (Date.now() - pausedAt) / 1000;
    assert.match(stalled, /no reconcile succeeded/);
    assert.ok((await metric(c, 'berth_docker_api_timeouts_total')) > 0, 'Docker calls timed out and were counted');
    const drainMs = await stopController(c);
    figures['3: SIGTERM to exit with dockerd paused'] = drainMs / 1000;
    assert.ok(drainMs < 5_000 + 4_000, `SIGTERM took ${drainMs} ms: within the 5 s drain timeout (and the 2 s exit grace)`);
    // Held as long as the scenario (40 s): well past every deadline and the stall timeout.
    await sleep(Math.max(0, 40_000 - (Date.now() - pausedAt)));
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await until('3: dockerd answers again', async () => (await docker.ping()) !== undefined, 30_000);
  const d = startController();
  controllers.push(d);
  await until('3: a new controller converged to v1 after SIGCONT', () => runs('v1'), 90_000);
});
