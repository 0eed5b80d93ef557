/**
 * Blue-green on the real lab, end to end: `berth controller` and `berth proxy` as child processes
 * (node bin/berth.js, lab env), the lab's nginx in front, a load generator through nginx. Names
 * are `bg-`; the group selects pool=lab. Run under `flock /tmp/berth-lab-tests.lock`.
 *
 *   v1 served → spec to v2 under load: 0 failures, v1→v2 with no flap back, blue at 0 after drain
 *   ("no flap back", as in cutover-load.test.ts: no old answer to a request started after the switch
 *   was confirmed, i.e. after every nginx worker that accepted before the route changed stopped
 *   accepting; nginx's graceful reload overlaps old and new workers for a moment before that)
 *   → web:broken: the route never moves, v2 keeps answering, status says why
 *   → 10 cutovers alternating v1/v2, 0 failures.
 * Prints cutover timings (apply → nginx serving only the new version): median and p99.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { createServer } from 'node:net';
import { openSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parseResource } from '../../src/api/resource.js';
import type { Environment, EnvironmentGroup, EnvironmentStatus } from '../../src/api/index.js';
import { createClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { RouteStore } from '../../src/store/routes.js';
import { StatusStore } from '../../src/store/status.js';
import { nginxWorkers } from '../../src/routing/nginx-process.js';
import { requireLab, type WebTag } from '../support/lab.js';

const lab = requireLab();
const etcd = createClient({ endpoints: lab.etcdEndpoints, prefix: '/berth' });
const store = new ResourceStore(etcd);
const statuses = new StatusStore(etcd);
const routes = new RouteStore(etcd);
const docker = lab.docker();
const GROUP = 'bg-g';
const ENV = 'bg-1';
const HOST = 'bg-1-web';
const LOG = `/tmp/berth-bg-test-${process.pid}.log`;
const nginx = new URL(lab.nginxUrl);

function groupSpec(): EnvironmentGroup {
  return parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: GROUP }, spec: { nodeSelector: { pool: 'lab' } } }) as EnvironmentGroup;
}

function envSpec(tag: WebTag): Environment {
  return parseResource({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: ENV },
    spec: {
      group: GROUP,
      nodes: 2,
      services: {
        web: {
          image: lab.image(tag),
          replicas: 2,
          ports: [{ target: 8080 }],
          placement: { maxPerNode: 1 },
          healthcheck: { test: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/healthz'], interval: '1s', timeout: '1s', retries: 3 },
          strategy: { type: 'blueGreen', drain: '2s', progressDeadline: '30s' },
        },
      },
    },
  }) as Environment;
}

// ---- children

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startChild(cmd: string, extra: string[] = []): Promise<ChildProcess> {
  const out = openSync(LOG, 'a');
  const child = spawn(process.execPath, ['bin/berth.js', cmd, '--metrics-addr', `127.0.0.1:${await freePort()}`, ...extra], { env: process.env, stdio: ['ignore', out, out] });
  child.once('exit', (code, sig) => {
    if (!stopping) console.log(`berth ${cmd} exited early (code ${code}, signal ${sig}); log: ${LOG}`);
  });
  return child;
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await done;
  clearTimeout(t);
}

// ---- helpers

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${last ? ` (last error: ${String(last)})` : ''}; log: ${LOG}`);
    await sleep(everyMs);
  }
}

interface Answer {
  start: number;
  end: number;
  status: number;
  body: string;
  error?: string;
}

function get(timeoutMs = 5_000): Promise<Answer> {
  const start = Date.now();
  return new Promise((resolve) => {
    const req = http.request({ host: nginx.hostname, port: Number(nginx.port || 80), path: '/', headers: { host: HOST }, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ start, end: Date.now(), status: res.statusCode ?? 0, body: body.trim() }));
      res.on('error', (e) => resolve({ start, end: Date.now(), status: 0, body, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ start, end: Date.now(), status: 0, body: '', error: e.message }));
    req.end();
  });
}

/** A steady `rate` req/s through nginx until stopped; every answer is kept. */
class Load {
  readonly answers: Answer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<void>>();

  start(rate = 50): void {
    this.timer = setInterval(() => {
      const p = get().then((a) => {
        this.answers.push(a);
      });
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    }, 1000 / rate);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.inflight]);
  }

  failures(): Answer[] {
    return this.answers.filter((a) => a.error !== undefined || a.status < 200 || a.status > 299);
  }

  /** Answers from the old version to requests started after the switch was confirmed. */
  flapsBack(oldBody: string, confirmed: number): Answer[] {
    return this.answers.filter((a) => !a.error && a.start >= confirmed && a.body === oldBody);
  }

  /** How long old and new answers interleaved (nginx reload overlap), ms; 0 when they did not. */
  overlapMs(oldBody: string, newBody: string, from: number): number {
    const after = this.answers.filter((a) => !a.error && a.start >= from);
    const firstNew = Math.min(...after.filter((a) => a.body === newBody).map((a) => a.start));
    const lastOld = Math.max(...after.filter((a) => a.body === oldBody).map((a) => a.start));
    return Number.isFinite(firstNew) && Number.isFinite(lastOld) ? Math.max(0, lastOld - firstNew) : 0;
  }
}

async function apply(tag: WebTag): Promise<void> {
  await store.apply(envSpec(tag));
}

async function status(): Promise<EnvironmentStatus | undefined> {
  return statuses.getStatus('Environment', ENV);
}

async function route() {
  return (await routes.listRoutes()).find((r) => r.upstream === HOST);
}

async function replicas(color: 'blue' | 'green'): Promise<number | undefined> {
  const list = (await docker.listServices({ filters: { name: [`${ENV}_web_${color}`] } } as never)) as unknown as Array<{ Spec: { Name: string; Mode: { Replicated?: { Replicas: number } } } }>;
  const s = list.find((x) => x.Spec.Name === `${ENV}_web_${color}`);
  return s ? (s.Spec.Mode.Replicated?.Replicas ?? 0) : undefined;
}

/** nginx serves only `body`: 10 sequential answers in a row, all `body`. */
async function servingOnly(body: string, timeoutMs = 60_000): Promise<void> {
  let streak = 0;
  await until(`nginx serves only ${body}`, async () => {
    const a = await get(3_000);
    streak = a.status === 200 && a.body === body ? streak + 1 : 0;
    return streak >= 10;
  }, timeoutMs, 20);
}

const PID_FILE = process.env.BERTH_NGINX_PID_FILE;

/**
 * Applies `next` and waits until nginx serves only it; returns apply → only-new seconds and when
 * the switch was confirmed (the route's colour changed and every nginx worker that accepted
 * before it stopped accepting).
 */
async function cutover(current: WebTag, next: WebTag): Promise<{ seconds: number; confirmed: number; oldColor: 'blue' | 'green' }> {
  const oldColor = (await route())!.color!;
  const before = PID_FILE ? await nginxWorkers(PID_FILE) : [];
  const from = Date.now();
  await apply(next);
  await until(`route leaves ${oldColor}`, async () => (await route())?.color !== oldColor, 60_000, 20);
  const confirmed = await until(
    'old nginx workers stopped accepting',
    async () => (PID_FILE ? (await nginxWorkers(PID_FILE)).some((w) => before.includes(w)) === false && Date.now() : Date.now() + 2_000),
    30_000,
    20,
  );
  await servingOnly(next);
  const seconds = (Date.now() - from) / 1000;
  cutoverSeconds.push(seconds);
  overlaps.push(load.overlapMs(current, next, from));
  return { seconds, confirmed, oldColor };
}

async function servicesOfEnv(): Promise<Array<{ ID: string; Spec: { Name: string } }>> {
  return (await docker.listServices({ filters: { label: [`berth.env=${ENV}`] } } as never)) as never;
}

/** Removes every bg- trace a failed earlier run may have left (the controller is not running). */
async function cleanSlate(): Promise<void> {
  await store.delete('Environment', ENV);
  for (const s of (await docker.listServices()) as Array<{ ID: string; Spec: { Name: string } }>) {
    if (s.Spec.Name.startsWith(`${ENV}_`)) await docker.getService(s.ID).remove();
  }
  for (const n of await docker.listNodes()) {
    const labels = { ...(n.Spec?.Labels ?? {}) } as Record<string, string>;
    if (labels['berth.env'] !== ENV) continue;
    delete labels['berth.env'];
    await docker.getNode(n.ID).update({ _query: { version: n.Version.Index }, _body: { ...n.Spec, Labels: labels } } as never);
  }
  await statuses.deleteStatus('Environment', ENV);
  await routes.deleteRoute(HOST);
  await store.delete('EnvironmentGroup', GROUP, { force: true });
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

// ---- the test

let controller: ChildProcess | undefined;
let proxy: ChildProcess | undefined;
let stopping = false;
const load = new Load();
const cutoverSeconds: number[] = [];
const overlaps: number[] = [];

before(async () => {
  await cleanSlate();
  await store.apply(groupSpec());
  proxy = await startChild('proxy', process.env.BERTH_NGINX_PID_FILE ? ['--nginx-pid-file', process.env.BERTH_NGINX_PID_FILE] : []);
  controller = await startChild('controller', ['--resync', '10s']);
});

after(async () => {
  await load.stop();
  try {
    await store.delete('Environment', ENV);
    await until('bg-1 services, status and route gone', async () => (await servicesOfEnv()).length === 0 && !(await status()) && !(await route()), 60_000, 500);
    await store.delete('EnvironmentGroup', GROUP, { force: true });
  } finally {
    stopping = true;
    await stopChild(controller);
    await stopChild(proxy);
    await cleanSlate().catch(() => undefined);
    etcd.close();
    const sorted = [...cutoverSeconds].sort((a, b) => a - b);
    console.log(
      `bluegreen-lab: ${load.answers.length} requests through nginx, ${load.failures().length} failed; ` +
        `cutovers (apply → nginx serving only the new version, s): n=${sorted.length} ` +
        `median=${quantile(sorted, 0.5).toFixed(2)} p99=${quantile(sorted, 0.99).toFixed(2)} all=${JSON.stringify(cutoverSeconds.map((s) => +s.toFixed(2)))}; ` +
        `old/new answers interleaved during nginx reload (ms): ${JSON.stringify(overlaps)}\n` +
        `logs: ${LOG}`,
    );
  }
});

test('v1 is served through nginx via the route (blue)', async () => {
  await apply('v1');
  await servingOnly('v1', 120_000);
  const r = await route();
  assert.equal(r?.color, 'blue');
  assert.equal(r?.servers.length, 2);
  const st = await until('Ready', async () => ((await status())?.phase === 'Ready' ? status() : undefined));
  assert.equal(st!.services.web?.activeColor, 'blue');
  load.start(50);
});

test('v1 → v2 under load: 0 failures, no flap back, blue at 0 after drain', async () => {
  const { confirmed } = await cutover('v1', 'v2');
  const r = await route();
  assert.equal(r?.color, 'green');
  await until('blue scaled to 0 after drain', async () => (await replicas('blue')) === 0, 30_000);
  await sleep(2_000);
  assert.deepEqual(load.failures().slice(0, 5), [], `${load.failures().length} failed requests`);
  assert.deepEqual(load.flapsBack('v1', confirmed).slice(0, 5), [], 'v1 answered after the switch to v2 was confirmed');
  const st = await status();
  const rec = st?.services.web?.cutovers?.at(-1);
  assert.equal(rec?.result, 'succeeded');
  assert.equal(rec?.toImage, lab.image('v2'));
  assert.equal(st?.services.web?.activeColor, 'green');
});

test('web:broken: abandoned, the route never moves, v2 keeps answering, status says why', async () => {
  const before = await route();
  const from = Date.now();
  await apply('broken');
  const st = await until(
    'CutoverAbandoned',
    async () => {
      const r = await route();
      assert.deepEqual(r, before, 'the route moved');
      const s = await status();
      return s?.conditions.some((c) => c.reason === 'CutoverAbandoned') ? s : undefined;
    },
    60_000,
    200,
  );
  assert.equal(st!.phase, 'Degraded');
  const cond = st!.conditions.find((c) => c.type === 'CutoverReady')!;
  assert.match(cond.message, /web:broken/);
  assert.match(cond.message, /not healthy within 30s/);
  assert.equal(st!.services.web?.pending?.state, 'Abandoned');
  assert.equal(st!.services.web?.cutovers?.at(-1)?.result, 'abandoned');
  await until('broken colour scaled to 0', async () => (await replicas('blue')) === 0, 20_000);
  await sleep(1_000);
  assert.deepEqual(await route(), before);
  const during = load.answers.filter((a) => a.start >= from);
  assert.ok(during.length > 100, `${during.length} requests while broken`);
  assert.deepEqual(during.filter((a) => a.body !== 'v2' || a.status !== 200).slice(0, 5), []);
  assert.deepEqual(load.failures().slice(0, 5), []);
});

test('10 cutovers in a row, alternating v1/v2, 0 failures', async () => {
  let current: WebTag = 'v2';
  for (let i = 0; i < 10; i++) {
    const next: WebTag = current === 'v2' ? 'v1' : 'v2';
    const { confirmed, oldColor: old } = await cutover(current, next);
    assert.notEqual((await route())?.color, old, `cutover ${i + 1}: colour changed`);
    await sleep(500);
    assert.deepEqual(load.flapsBack(current, confirmed).slice(0, 5), [], `cutover ${i + 1}: ${current} answered after the switch to ${next} was confirmed`);
    // The old colour drains and goes to 0 before the next change: every cutover brings up fresh tasks.
    await until(`cutover ${i + 1}: old colour at 0`, async () => (await replicas(old)) === 0, 30_000);
    current = next;
  }
  await load.stop();
  assert.ok(load.answers.length >= 2_000, `only ${load.answers.length} requests`);
  assert.deepEqual(load.failures().slice(0, 5), [], `${load.failures().length} of ${load.answers.length} failed`);
  const st = await until('Ready', async () => ((await status())?.phase === 'Ready' ? status() : undefined), 30_000);
  assert.equal(st!.services.web?.pending, undefined);
});
