/**
 * On the lab: what berth does with Swarm's rollbacks and with specs written raw into etcd.
 *   (a) a rolling update to web:broken (never healthy) is rolled back by Swarm: the status says
 *       RolledBack, phase Degraded, and berth issues no service update over the next 30 s;
 *   (b) a raw `etcdctl put` of non-JSON over the environment's key: its service keeps running
 *       untouched, and the controller logs it and writes its status once, however many Docker
 *       events its service raises.
 * Its own prefix (/berth-rb) and `rb-` names. Run under `flock /tmp/berth-lab-tests.lock`.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parseResource } from '../../src/api/resource.js';
import type { Environment, EnvironmentGroup, EnvironmentStatus } from '../../src/api/index.js';
import { createClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { StatusStore } from '../../src/store/status.js';
import { requireLab, type WebTag } from '../support/lab.js';
import { releaseClaims } from '../support/claims.js';
import { sleep, until as poll } from '../support/poll.js';

const PREFIX = '/berth-rb';
const ENV = 'rb-1';
const SERVICE = `${ENV}_web`;
const lab = requireLab();
const etcd = createClient({ endpoints: lab.etcdEndpoints, prefix: PREFIX });
const store = new ResourceStore(etcd);
const statuses = new StatusStore(etcd);
const docker = lab.docker();
const LOG = `/tmp/berth-rb-test-${process.pid}.log`;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function envSpec(tag: WebTag): Environment {
  return parseResource({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: ENV },
    spec: {
      group: 'rb-g',
      nodes: 1,
      services: {
        web: {
          image: lab.image(tag),
          replicas: 1,
          command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
          ports: [{ target: 8080 }],
          healthcheck: { test: ['CMD', 'wget', '-q', '-O-', 'http://127.0.0.1:8080/'], interval: '1s', retries: 2 },
        },
      },
    },
  }) as Environment;
}

const until = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> => poll(what, fn, timeoutMs, 500, `controller log: ${LOG}`);

const status = (): Promise<EnvironmentStatus | undefined> => statuses.getStatus('Environment', ENV);
const service = async (): Promise<Json | undefined> =>
  ((await docker.listServices({ filters: { name: [SERVICE] } })) as Json[]).find((s) => s.Spec.Name === SERVICE);

/** Docker's service events for `id` between two times (seconds), read back from the daemon. */
async function serviceEvents(id: string, since: number, until: number): Promise<Json[]> {
  const stream = (await docker.getEvents({ since, until, filters: { type: ['service'], service: [id] } } as never)) as unknown as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Json);
}

const logLines = (pattern: RegExp) => readFileSync(LOG, 'utf8').split('\n').filter((l) => pattern.test(l));

async function cleanSlate(): Promise<void> {
  const s = await service();
  if (s) await docker.getService(s.ID).remove();
  await releaseClaims(docker, (env) => env === ENV);
  await etcd.etcd.delete().prefix(`${PREFIX}/`).exec();
}

let controller: ChildProcess;

before(async () => {
  await cleanSlate();
  await store.apply(
    parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'rb-g' }, spec: { nodeSelector: { pool: 'lab' } } }) as EnvironmentGroup,
  );
  const out = openSync(LOG, 'a');
  const code = "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(['node', 'berth', ...process.argv.slice(1)]); })";
  controller = spawn(process.execPath, ['--import', 'tsx', '-e', code, 'controller', '--metrics-addr', `127.0.0.1:${19690 + (process.pid % 100)}`, '--resync', '5s'], {
    env: { ...process.env, BERTH_PREFIX: PREFIX },
    stdio: ['ignore', out, out],
  });
});

after(async () => {
  if (controller && controller.exitCode === null) {
    controller.kill('SIGTERM');
    await new Promise((r) => controller.once('exit', r));
  }
  await cleanSlate().catch(() => undefined);
  etcd.close();
  console.log(`controller log: ${LOG}`);
});

test('(a) Swarm rolls back an update to web:broken: RolledBack, Degraded, and berth issues no update over 10 s (two resyncs)', async () => {
  await store.apply(envSpec('v1'));
  await until('rb-1 Ready on web:v1', async () => (await status())?.phase === 'Ready');
  const applied = Date.now();
  await store.apply(envSpec('broken'));
  const st = await until('RolledBack reported', async () => {
    const s = await status();
    return s?.phase === 'Degraded' && s.conditions.some((c) => c.type === 'RolledBack' && c.status === 'True') ? s : undefined;
  }, 180_000);
  console.log(`rolled back and reported ${((Date.now() - applied) / 1000).toFixed(1)} s after the apply`);
  assert.ok(st.services.web?.rolledBack?.image.startsWith(`${lab.image('broken')}@sha256:`), st.services.web?.rolledBack?.image);
  assert.equal(st.conditions.find((c) => c.type === 'Ready')?.reason, 'UpdateRolledBack');

  // Reported as soon as Swarm starts rolling back; the window starts once Swarm is done.
  const svc = await until('Swarm\'s rollback completed', async () => {
    const s = await service();
    return s?.UpdateStatus?.State === 'rollback_completed' ? s : undefined;
  });
  // Docker's event times are whole seconds: start at the next one, after the rollback's own events.
  const from = Math.ceil(Date.now() / 1000) + 1;
  const version = svc.Version.Index as number;
  // Two resyncs (--resync 5s): a controller that re-issued the spec would have done so by then.
  await sleep(10_000);
  const events = await serviceEvents(svc.ID, from, Math.floor(Date.now() / 1000));
  const now = (await service())!;
  console.log(`over 10 s after the rollback: ${events.length} service events, version ${version} → ${now.Version.Index}`);
  assert.deepEqual(events.map((e) => `${e.Action} ${JSON.stringify(e.Actor?.Attributes ?? {})}`), [], 'no service update issued');
  assert.equal(now.Version.Index, version);
  assert.match(now.Spec.TaskTemplate.ContainerSpec.Image, /web:v1/);
  assert.equal((await status())?.phase, 'Degraded');

  // A changed spec is issued again, and converges.
  await store.apply(envSpec('v2'));
  await until('rb-1 Ready on web:v2', async () => {
    const s = await status();
    return s?.phase === 'Ready' && s.services.web?.image.includes('web:v2') && !s.conditions.some((c) => c.type === 'RolledBack');
  });
  await until('Swarm\'s update to web:v2 completed', async () => (await service())?.UpdateStatus?.State === 'completed');
});

test('(b) a raw put of non-JSON over the spec: the service keeps running, one log line and one status write', async () => {
  const before = (await service())!;
  execFileSync('etcdctl', ['--endpoints', lab.etcdEndpoints.join(','), 'put', `${PREFIX}/environments/${ENV}`, 'services: {web: {image: v3}}'], {
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  await until('Failed/InvalidSpec', async () => (await status())?.phase === 'Failed');
  const statusKey = `${PREFIX}/status/environments/${ENV}`;
  const statusRevision = (await etcd.etcd.get(statusKey).exec()).kvs[0]!.mod_revision;

  // Raise Docker events for the service: kill its container; Swarm starts another.
  const task = ((await docker.listTasks({ filters: { service: [SERVICE], 'desired-state': ['running'] } })) as Json[])[0]!;
  for (let i = 1; i <= lab.nodes.length; i++) {
    const node = lab.nodeDocker(i);
    const [c] = (await node.listContainers({ filters: { label: [`com.docker.swarm.task.id=${task.ID}`] } })) as Json[];
    if (c) await node.getContainer(c.Id).kill();
  }
  await sleep(12_000); // two resyncs and the restart's events

  const after = (await service())!;
  assert.equal(after.Version.Index, before.Version.Index, 'the service was not changed');
  const running = (await docker.listTasks({ filters: { service: [SERVICE], 'desired-state': ['running'] } })) as Json[];
  assert.ok(running.some((t) => t.Status.State === 'running'), 'Swarm runs it again');
  const logged = logLines(/invalid environment spec/);
  console.log(`after the raw put: ${logged.length} log line(s) about it; status revision ${statusRevision} → ${(await etcd.etcd.get(statusKey).exec()).kvs[0]!.mod_revision}`);
  assert.equal(logged.length, 1, 'reported once');
  assert.equal((await etcd.etcd.get(statusKey).exec()).kvs[0]!.mod_revision, statusRevision, 'status written once');
  assert.equal((await status())?.conditions.find((c) => c.type === 'Ready')?.reason, 'InvalidSpec');
});
