/**
 * A converged environment costs nothing between resyncs. On the lab, one environment on all three
 * nodes runs a service with a 1 s healthcheck: every probe makes Docker emit exec_create,
 * exec_start and exec_die for the containers on the manager, which the controller used to turn
 * into a reconcile and a full Swarm listing each. Over 60 s at rest the controller must run no
 * reconcile beyond its resync and make no Docker call beyond the resync's one list of the tasks.
 */
import assert from 'node:assert/strict';
import type Docker from 'dockerode';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Environment, EnvironmentGroup } from '../../src/api/index.js';
import { parseResource } from '../../src/api/resource.js';
import { createClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { StatusStore } from '../../src/store/status.js';
import { requireLab } from '../support/lab.js';
import { metricTotal, scrapeMetrics } from '../support/prom-text.js';

const lab = requireLab();
const etcd = createClient({ endpoints: lab.etcdEndpoints, prefix: '/berth' });
const store = new ResourceStore(etcd);
const statuses = new StatusStore(etcd);
const docker = lab.docker();
const GROUP = 'idle-g';
const ENV = 'idle-a';
const RESYNC_S = 30;
const WINDOW_MS = 60_000;
const PORT = 19530 + (process.pid % 200);
const LOG = `/tmp/berth-idle-test-${process.pid}.log`;
let controller: ChildProcess | undefined;

const group = parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: GROUP }, spec: { nodeSelector: { pool: 'lab' } } }) as EnvironmentGroup;
const env = parseResource({
  apiVersion: 'berth.dev/v1alpha1',
  kind: 'Environment',
  metadata: { name: ENV },
  spec: {
    group: GROUP,
    nodes: 3,
    services: {
      web: {
        image: lab.image('v1'),
        replicas: 3,
        ports: [{ target: 8080 }],
        placement: { maxPerNode: 1 },
        healthcheck: { test: ['CMD', 'wget', '-q', '-O-', 'http://127.0.0.1:8080/'], interval: '1s', retries: 3 },
      },
    },
  },
}) as Environment;

const metrics = () => scrapeMetrics(`http://127.0.0.1:${PORT}/metrics`);

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const start = Date.now();
  while (!(await fn().catch(() => false))) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function removeAll(): Promise<void> {
  await store.markDeleted(ENV).catch(() => undefined);
  await until('the environment removed', async () => {
    const services = await docker.listServices({ filters: { label: [`berth.env=${ENV}`] } } as Docker.ServiceListOptions);
    const nodes = (await docker.listNodes()).filter((n) => n.Spec?.Labels?.['berth.env'] === ENV);
    return services.length === 0 && nodes.length === 0 && !(await statuses.getStatus('Environment', ENV).catch(() => undefined));
  });
}

before(async () => {
  await store.apply(group);
  const out = openSync(LOG, 'a');
  controller = spawn(process.execPath, ['bin/berth.js', 'controller', '--metrics-addr', `127.0.0.1:${PORT}`, '--resync', `${RESYNC_S}s`], {
    env: process.env,
    stdio: ['ignore', out, out],
  });
});

after(async () => {
  if (controller && controller.exitCode === null) {
    await removeAll().catch(() => undefined);
    const exited = new Promise((r) => controller!.once('exit', r));
    controller.kill('SIGTERM');
    await exited;
  }
  await store.delete('EnvironmentGroup', GROUP, { force: true }).catch(() => undefined);
  etcd.close();
  console.log(`controller log: ${LOG}`);
});

test('one converged environment with a 1 s healthcheck: no reconcile beyond resync and no Docker call beyond its list over 60 s', { timeout: 240_000 }, async () => {
  await store.apply(env);
  await until('Ready', async () => (await statuses.getStatus('Environment', ENV))?.phase === 'Ready');
  // The containers of an earlier test file's services may still be stopping (a 10 s grace): their
  // events, which Docker raises on the manager, rightly reconcile environments of theirs. The
  // window counts this one's alone.
  await until('no other service container on the manager', async () =>
    (await docker.listContainers({ all: true })).every((c) => {
      const service = c.Labels?.['com.docker.swarm.service.name'];
      return service === undefined || service.startsWith(`${ENV}_`);
    }),
  );
  // Let the last convergence passes (route, status) finish before counting.
  await new Promise((r) => setTimeout(r, 5_000));
  const start = await metrics();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const end = await metrics();

  const delta = (name: string, filter = '') => metricTotal(end, name, filter) - metricTotal(start, name, filter);
  const resyncs = Math.ceil(WINDOW_MS / 1000 / RESYNC_S);
  const reconciles = delta('berth_reconciles_total', 'kind="Environment"');
  const dropped = delta('berth_docker_events_total', 'kept="false"');
  const requests = [...end].filter(([k]) => k.startsWith('berth_docker_api_requests_total{')).map(([k, v]) => [k.replace(/.*operation="([^"]+)".*/, '$1'), v - (start.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
  console.log(JSON.stringify({ reconciles, droppedEvents: dropped, dockerRequests: Object.fromEntries(requests) }));

  assert.ok(dropped >= 30, `the healthcheck's exec events reached the controller and were dropped (${dropped} in 60 s)`);
  assert.ok(reconciles <= resyncs + 1, `${reconciles} reconciles of the environment in 60 s; resync allows ${resyncs}`);
  for (const [operation, n] of requests) {
    // Nodes and services raise events: they are listed again only every --relist (10 min).
    assert.equal(operation, 'listTasks', `no ${operation} at rest (${n} made)`);
    assert.ok(n <= resyncs + 1, `${n} ${operation} in 60 s; the resync lists the tasks once per period`);
  }
  assert.equal((await statuses.getStatus('Environment', ENV))?.phase, 'Ready');
});
