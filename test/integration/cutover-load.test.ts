import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { get, sleep, startBackend, startRig, stopBackend, type Backend, type RoutingRig } from '../support/proxy-harness.js';

/**
 * Cutovers under load, on REAL parts: private etcd (127.0.0.1:23792), real nginx
 * (127.0.0.1:18081), berth proxy in-process, loopback backends v1 / v2. Per mode (keep-alive off,
 * keep-alive on): 2,500 GETs at ~200 req/s through nginx while setRoute flips the route
 * v1 → v2 → v1 … 10 times. Asserts 0 non-2xx, 0 connection errors, and no flap back: a request
 * started after a switch was confirmed (old nginx workers stopped accepting) and before the next
 * switch began is answered by the new version.
 *
 * Keep-alive clients: a request sent on a pooled connection that nginx closes at that instant (an
 * old worker shutting down closes its idle connections) is retried once on a fresh connection, as
 * HTTP clients do for idempotent requests on reused sockets; such retries are counted and reported.
 */
const PORT = 18081;
const HOST = 'load-svc';
const owner = { env: 'qa-load', service: 'svc' };
let rig: RoutingRig;
let v1: Backend;
let v2: Backend;

before(async () => {
  v1 = await startBackend('v1');
  v2 = await startBackend('v2');
  rig = await startRig({ etcdPort: 23792, nginxPort: PORT, prefix: '/berth-cutover-test/routes' });
});

after(async () => {
  await rig?.stop();
  if (v1) await stopBackend(v1);
  if (v2) await stopBackend(v2);
});

interface Sample {
  start: number;
  end: number;
  status: number;
  body: string;
  error?: string;
  retried: boolean;
}

function once(agent: http.Agent | false): Promise<{ status: number; body: string; reused: boolean; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: PORT, path: '/', headers: { host: HOST }, agent, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
      res.on('error', (e) => resolve({ status: 0, body, reused: req.reusedSocket, error: e }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body: '', reused: req.reusedSocket, error: e }));
    req.end();
  });
}

async function request(agent: http.Agent | false): Promise<Sample> {
  const start = performance.now();
  let r = await once(agent);
  let retried = false;
  if (r.error && r.reused && ['ECONNRESET', 'EPIPE'].includes(r.error.code ?? '')) {
    retried = true;
    r = await once(false); // on a new connection: the pooled one was closed by a retiring worker
  }
  return { start, end: performance.now(), status: r.status, body: r.body, retried, ...(r.error ? { error: r.error.code ?? r.error.message } : {}) };
}

async function runMode(keepAlive: boolean) {
  const agent = keepAlive ? new http.Agent({ keepAlive: true, maxSockets: 32 }) : false;
  const backends = [v1, v2];
  let current = 0;
  await rig.routes.setRoute({ upstream: HOST, servers: [v1.addr], color: 'blue', owner });
  for (let i = 0; i < 200 && (await get(PORT, HOST)).body !== 'v1'; i++) await sleep(20);
  await sleep(700);

  const total = 2_500;
  const rate = 200;
  const samples: Promise<Sample>[] = [];
  // Switches: [startedAt, confirmedAt, version]
  const switches: { started: number; confirmed: number; version: string }[] = [{ started: 0, confirmed: 0, version: 'v1' }];
  const t0 = performance.now();
  const load = (async () => {
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      samples.push(request(agent));
    }
  })();
  const flips = (async () => {
    await sleep(400);
    for (let k = 0; k < 10; k++) {
      current = 1 - current;
      const applied = rig.proxy.nextApply();
      const started = performance.now();
      await rig.routes.setRoute({ upstream: HOST, servers: [backends[current]!.addr], color: current ? 'green' : 'blue', owner });
      const result = await applied;
      assert.equal(result, 'reloaded');
      switches.push({ started, confirmed: performance.now(), version: backends[current]!.body });
      await sleep(700);
    }
  })();
  await Promise.all([load, flips]);
  const done = await Promise.all(samples);
  if (agent) agent.destroy();
  const elapsed = (performance.now() - t0) / 1000;

  const non2xx = done.filter((s) => !s.error && (s.status < 200 || s.status > 299));
  const errors = done.filter((s) => s.error);
  // Flap check: a request started in [confirmed_k, started_{k+1}) must get version_k.
  const flaps: Sample[] = [];
  for (let k = 0; k < switches.length; k++) {
    const from = switches[k]!.confirmed;
    const to = switches[k + 1]?.started ?? Infinity;
    for (const s of done) if (!s.error && s.start >= from && s.start < to && s.body !== switches[k]!.version) flaps.push(s);
  }
  const lat = done.map((s) => s.end - s.start).sort((a, b) => a - b);
  return {
    keepAlive,
    requests: done.length,
    seconds: Number(elapsed.toFixed(2)),
    rps: Math.round(done.length / elapsed),
    switches: switches.length - 1,
    non2xx: non2xx.length,
    connectionErrors: errors.length,
    errorSamples: errors.slice(0, 3).map((e) => e.error),
    keepAliveRetries: done.filter((s) => s.retried).length,
    flaps: flaps.length,
    p50ms: Number(lat[Math.floor(lat.length * 0.5)]!.toFixed(2)),
    p99ms: Number(lat[Math.floor(lat.length * 0.99)]!.toFixed(2)),
    v1: done.filter((s) => s.body === 'v1').length,
    v2: done.filter((s) => s.body === 'v2').length,
  };
}

for (const keepAlive of [false, true]) {
  test(`cutover under load, keep-alive ${keepAlive ? 'on' : 'off'}: 0 non-2xx, 0 errors, no flap`, async (t) => {
    const r = await runMode(keepAlive);
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.requests, 2_500);
    assert.equal(r.switches, 10);
    assert.equal(r.non2xx, 0, 'non-2xx answers');
    assert.equal(r.connectionErrors, 0, `connection errors: ${r.errorSamples.join(', ')}`);
    assert.equal(r.flaps, 0, 'answers from the old version after a confirmed switch');
    assert.ok(r.v1 > 0 && r.v2 > 0);
  });
}
