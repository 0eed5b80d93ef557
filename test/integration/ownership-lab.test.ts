/**
 * Ownership by installation and explicit deletion, on the lab (etcd + 3-node Swarm), with
 * `berth controller` and the CLI as child processes. Names are prefixed `own-`. Run under
 * `flock /tmp/berth-lab-tests.lock` (the Swarm is shared).
 *
 * (1) a controller on an empty prefix leaves /berth's running environment untouched;
 * (2) a raw `etcdctl del` of an environment key keeps its services for --orphan-grace, then they go;
 * (3) re-applying the same spec within the grace keeps the same services (ids and versions);
 * (4) `berth delete env` still removes everything at once;
 * (5) the brake: both environments of an installation raw-deleted are held past the grace, listed
 *     by `berth get envs --orphaned`, counted in berth_deletions_held, until `berth gc --confirm`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parseResource } from '../../src/api/resource.js';
import type { Environment, EnvironmentGroup, EnvironmentStatus } from '../../src/api/index.js';
import { createClient, type EtcdClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { StatusStore } from '../../src/store/status.js';
import { sleep, until as poll } from '../support/poll.js';
import { requireLab } from '../support/lab.js';
import { releaseClaims } from '../support/claims.js';

const lab = requireLab();
const docker = lab.docker();
const GROUP = 'own-g';
const GRACE_S = 12;
const LOG = `/tmp/berth-own-test-${process.pid}.log`;
const OTHER = `/own-other-${process.pid}`;
const BRAKE = `/own-brake-${process.pid}`;
const figures: Record<string, number | string> = {};

/** One prefix's view: its resources, statuses and raw keys. */
function prefixed(prefix: string) {
  const client = createClient({ endpoints: lab.etcdEndpoints, prefix });
  return { prefix, client, store: new ResourceStore(client), statuses: new StatusStore(client) };
}
const main = prefixed('/berth');
const brake = prefixed(BRAKE);
const other = prefixed(OTHER);

const groupSpec = (): EnvironmentGroup =>
  parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: GROUP }, spec: { nodeSelector: { pool: 'lab' } } }) as EnvironmentGroup;

function envSpec(name: string, nodes = 1): Environment {
  const services = nodes > 0 ? { web: { image: lab.image('v1'), replicas: 1, ports: [{ target: 8080 }] } } : {};
  return parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name }, spec: { group: GROUP, nodes, services } }) as Environment;
}

let nextPort = 19700 + (process.pid % 200);
const children: ChildProcess[] = [];
function startController(prefix: string, extra: string[] = []): { child: ChildProcess; port: number } {
  const port = nextPort++;
  const out = openSync(LOG, 'a');
  const child = spawn(process.execPath, ['bin/berth.js', 'controller', '--metrics-addr', `127.0.0.1:${port}`, '--resync', '5s', '--prefix', prefix, ...extra], {
    env: process.env,
    stdio: ['ignore', out, out],
  });
  children.push(child);
  return { child, port };
}

async function stopController(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

function berth(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/berth.js', ...args], { env: process.env, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const until = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 90_000) => poll(what, fn, timeoutMs, 500);

/** `id@version` of each service of `env`, and its installation label: what must not change. */
async function services(env: string): Promise<string[]> {
  const list = (await docker.listServices({ filters: { label: [`berth.env=${env}`] } } as never)) as unknown as Array<{ ID: string; Version: { Index: number }; Spec: { Labels: Record<string, string> } }>;
  return list.map((s) => `${s.ID}@${s.Version.Index}:${s.Spec.Labels['berth.installation'] ?? '-'}`).sort();
}

async function claims(env: string): Promise<string[]> {
  return (await docker.listNodes())
    .filter((n) => n.Spec?.Labels?.['berth.env'] === env)
    .map((n) => `${n.ID}@${n.Version?.Index}:${n.Spec?.Labels?.['berth.installation'] ?? '-'}`)
    .sort();
}

async function ready(p: ReturnType<typeof prefixed>, env: string): Promise<EnvironmentStatus | undefined> {
  const s = await p.statuses.getStatus('Environment', env);
  return s?.phase === 'Ready' && Object.values(s.services).every((x) => x.runningReplicas === x.desiredReplicas) ? s : undefined;
}

const rawDelete = (p: ReturnType<typeof prefixed>, env: string) => p.client.etcd.delete().key(`${p.prefix}/environments/${env}`).exec();
const installationOf = async (c: EtcdClient) => (await c.etcd.get(`${c.prefix}/installation`).string()) ?? undefined;

/** Every own- trace, in every prefix this file uses (controllers stopped). */
async function cleanSlate(): Promise<void> {
  for (const s of (await docker.listServices()) as Array<{ ID: string; Spec: { Name: string } }>) if (s.Spec.Name.startsWith('own-')) await docker.getService(s.ID).remove();
  await releaseClaims(docker, (env) => env.startsWith('own-'));
  for (const p of [main]) {
    for (const sub of ['environments', 'status/environments', 'gc/environments']) await p.client.etcd.delete().prefix(`${p.prefix}/${sub}/own-`).exec();
    await p.client.etcd.delete().prefix(`${p.prefix}/routes/own-`).exec();
    await p.store.delete('EnvironmentGroup', GROUP, { force: true });
  }
  for (const p of [brake, other]) await p.client.etcd.delete().prefix(`${p.prefix}/`).exec();
}

let ours: { child: ChildProcess; port: number };

before(async () => {
  await cleanSlate();
  await main.store.apply(groupSpec());
  // Three environments that hold nothing: one raw deletion out of four is not braked.
  for (const f of ['own-f1', 'own-f2', 'own-f3']) await main.store.apply(envSpec(f, 0));
  await main.store.apply(envSpec('own-a'));
  ours = startController('/berth', ['--orphan-grace', `${GRACE_S}s`]);
});

after(async () => {
  for (const c of children) await stopController(c);
  await cleanSlate().catch(() => undefined);
  for (const p of [main, brake, other]) p.client.close();
  console.log(`figures: ${JSON.stringify(figures)}\ncontroller log: ${LOG}`);
});

test('(1) a controller on an empty prefix for 12 s (two of its resyncs) leaves /berth’s environment untouched', async () => {
  await until('own-a Ready', () => ready(main, 'own-a'));
  const id = await installationOf(main.client);
  assert.ok(id, '/berth has an installation id');
  const svc = await services('own-a');
  const nodes = await claims('own-a');
  assert.equal(svc.length, 1);
  assert.ok(svc.every((s) => s.endsWith(`:${id}`)), `services labelled with ${id}: ${svc}`);
  assert.ok(nodes.length === 1 && nodes.every((n) => n.endsWith(`:${id}`)), `claim labelled with ${id}: ${nodes}`);

  const stranger = startController(OTHER);
  await sleep(12_000);
  assert.equal(stranger.child.exitCode, null, 'the stranger kept running');
  const otherId = await installationOf(other.client);
  assert.ok(otherId && otherId !== id, `the empty prefix got its own id (${otherId})`);
  assert.deepEqual(await services('own-a'), svc, 'same service ids and versions');
  assert.deepEqual(await claims('own-a'), nodes, 'same node claim and version');
  assert.deepEqual([...(await other.statuses.listStatuses('Environment')).keys()], [], 'the stranger recorded nothing of ours');
  await stopController(stranger.child);
  figures.installation = id!;
});

test('(2)+(3) a raw delete keeps the services through the grace; re-applying the same spec adopts them unchanged', async () => {
  const svc = await services('own-a');
  await rawDelete(main, 'own-a');
  const gone = Date.now();
  await sleep(6_000);
  assert.deepEqual(await services('own-a'), svc, 'still running after 6 s');
  const listed = berth('get', 'envs', '--orphaned', '-o', 'json');
  assert.equal(listed.code, 0, listed.stderr);
  const held = (JSON.parse(listed.stdout) as { items: Array<{ name: string; reason: string }> }).items.find((o) => o.name === 'own-a');
  assert.equal(held?.reason, 'GracePeriod', listed.stdout);

  assert.equal((await main.store.apply(envSpec('own-a'))).result, 'created');
  await until('own-a adopted: Ready, no Orphaned condition', async () => {
    const s = await ready(main, 'own-a');
    return s && !s.conditions.some((c) => c.type === 'Orphaned');
  });
  await sleep(Math.max(0, gone + (GRACE_S + 4) * 1000 - Date.now()));
  assert.deepEqual(await services('own-a'), svc, 'same ids and versions, past the old grace');
});

test('(2) not braked (1 of 4), the services of a raw-deleted key go only after the grace', async () => {
  await rawDelete(main, 'own-a');
  const gone = Date.now();
  const svc = await services('own-a');
  await sleep(6_000);
  assert.deepEqual(await services('own-a'), svc, 'still running after 6 s');
  await until('own-a removed after the grace', async () => (await services('own-a')).length === 0 && (await claims('own-a')).length === 0, 90_000);
  const s = (Date.now() - gone) / 1000;
  figures.orphanRemovedAfterS = Math.round(s * 10) / 10;
  assert.ok(s >= GRACE_S, `removed after ${s} s, not before the ${GRACE_S} s grace`);
  // The status goes last, after the services, claims and routes (a few ms later).
  await until('own-a status removed', async () => (await main.statuses.getStatus('Environment', 'own-a')) === undefined, 10_000);
});

test('(4) berth delete env removes everything promptly, then the keys', async () => {
  await main.store.apply(envSpec('own-d'));
  await until('own-d Ready', () => ready(main, 'own-d'));
  const start = Date.now();
  const r = berth('delete', 'env', 'own-d');
  assert.equal(r.code, 0, r.stderr);
  await until('own-d removed', async () => (await services('own-d')).length === 0 && (await claims('own-d')).length === 0 && !(await main.store.get('Environment', 'own-d')) && !(await main.statuses.getStatus('Environment', 'own-d')), 30_000);
  figures.deleteS = Math.round((Date.now() - start) / 100) / 10;
  assert.ok((Date.now() - start) / 1000 < GRACE_S, `explicit deletion waits for no grace (${figures.deleteS} s)`);
});

test('(5) both environments raw-deleted: held past the grace, listed, counted, until berth gc --confirm', async () => {
  await stopController(ours.child);
  await brake.store.apply(groupSpec());
  for (const e of ['own-b1', 'own-b2']) await brake.store.apply(envSpec(e));
  const r = startController(BRAKE, ['--orphan-grace', '5s']);
  for (const e of ['own-b1', 'own-b2']) await until(`${e} Ready`, () => ready(brake, e));
  const before = [...(await services('own-b1')), ...(await services('own-b2'))];

  for (const e of ['own-b1', 'own-b2']) await rawDelete(brake, e);
  const heldBoth = await until('both held by the brake', async () => {
    const res = berth('get', 'envs', '--orphaned', '--prefix', BRAKE, '-o', 'json');
    const items = (JSON.parse(res.stdout) as { items: Array<{ name: string; reason: string }> }).items;
    return items.length === 2 && items.every((i) => i.reason === 'LastEnvironment') ? items : undefined;
  }, 30_000);
  assert.deepEqual(heldBoth.map((i) => i.name), ['own-b1', 'own-b2']);
  await sleep(8_000);
  assert.deepEqual([...(await services('own-b1')), ...(await services('own-b2'))], before, 'held: still running, unchanged, well past the 5 s grace');
  const table = berth('get', 'envs', '--orphaned', '--prefix', BRAKE);
  assert.match(table.stdout, /^NAME\s+HELD\s+SINCE\s+SERVICES\s+NODES\s+MESSAGE\nown-b1\s+LastEnvironment\s+\d+s\s+web\s/);
  const metrics = await until('berth_deletions_held counts them', async () => {
    const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
    return /berth_deletions_held\{reason="LastEnvironment"\} 2/.test(text) ? text : undefined;
  }, 20_000);
  assert.match(metrics, /berth_deletions_held\{reason="GracePeriod"\} 0/);

  const dry = berth('gc', '--prefix', BRAKE);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stderr, /2 held deletions; run again with --confirm/);
  await sleep(3_000);
  assert.equal((await services('own-b1')).length, 1, 'gc without --confirm changes nothing');

  const start = Date.now();
  const gc = berth('gc', '--confirm', '--prefix', BRAKE);
  assert.equal(gc.code, 0, gc.stderr);
  assert.equal(gc.stdout, 'environment/own-b1 released\nenvironment/own-b2 released\n');
  await until(
    'released: services, claims and statuses removed',
    async () =>
      (await services('own-b1')).length + (await services('own-b2')).length === 0 &&
      (await claims('own-b1')).length + (await claims('own-b2')).length === 0 &&
      (await brake.statuses.listStatuses('Environment')).size === 0,
    30_000,
  );
  figures.gcReleaseS = Math.round((Date.now() - start) / 100) / 10;
  assert.deepEqual(await brake.client.etcd.getAll().prefix(`${BRAKE}/gc/`).keys(), [], 'the releases are consumed');
  await stopController(r.child);
});
