import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createMetrics } from '../../src/metrics/registry.js';
import { parseListenAddr, startMetricsServer } from '../../src/metrics/server.js';

test('parses listen addresses', () => {
  assert.deepEqual(parseListenAddr(':9464'), { host: undefined, port: 9464 });
  assert.deepEqual(parseListenAddr('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseListenAddr('[::1]:9464'), { host: '::1', port: 9464 });
  assert.throws(() => parseListenAddr('9464'));
});

test('/metrics has every berth metric; /healthz; /readyz follows the probe', async () => {
  const m = createMetrics();
  m.reconcilesTotal.inc({ kind: 'Environment', result: 'success' });
  m.dockerApiErrors.inc({ operation: 'createService' });
  let ready = false;
  const server = await startMetricsServer('127.0.0.1:0', m.registry, { ready: () => ready });
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const body = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'berth_reconciles_total{kind="Environment",result="success"} 1',
      'berth_reconcile_duration_seconds',
      'berth_workqueue_depth',
      'berth_workqueue_retries_total',
      'berth_environments',
      'berth_environment_nodes',
      'berth_service_replicas_desired',
      'berth_service_replicas_running',
      'berth_cutovers_total',
      'berth_cutover_duration_seconds',
      'berth_leader',
      'berth_etcd_watch_restarts_total',
      'berth_docker_api_errors_total{operation="createService"} 1',
      'berth_process_cpu_seconds_total',
    ]) {
      assert.ok(body.includes(name), name);
    }
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 503);
    ready = true;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  } finally {
    server.close();
    server.closeAllConnections();
  }
});

test('/healthz answers 500 with the reason while the probe reports a stall', async () => {
  const m = createMetrics();
  let stalled: string | undefined;
  const server = await startMetricsServer('127.0.0.1:0', m.registry, { ready: () => true, stalled: () => stalled });
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    stalled = 'berth: no reconcile succeeded for 200 s';
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 500);
    assert.match(await res.text(), /stalled: berth: no reconcile succeeded for 200 s/);
  } finally {
    server.close();
    server.closeAllConnections();
  }
});
