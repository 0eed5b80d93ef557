/**
 * For the blue-green integration tests: one environment with one routed service `web` on the real
 * lab, `berth controller` and `berth proxy` as child processes (node bin/berth.js, lab env), and
 * requests through the lab's nginx with the route's Host header.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { after, before } from 'node:test';
import type { Environment, EnvironmentGroup, EnvironmentStatus } from '../../src/api/index.js';
import { parseResource } from '../../src/api/resource.js';
import type { Color } from '../../src/api/status.js';
import { createClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { RouteStore } from '../../src/store/routes.js';
import { StatusStore } from '../../src/store/status.js';
import { clearReleaseRequests } from '../../src/store/release-requests.js';
import { requireLab, type WebTag } from './lab.js';
import { sleep, until } from './poll.js';
import { releaseClaims } from './claims.js';

export { sleep };

export interface Answer {
  start: number;
  end: number;
  status: number;
  body: string;
  error?: string;
}

/** A steady `rate` req/s of `request` until stopped; every answer is kept. */
export class Load {
  readonly answers: Answer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly request: () => Promise<Answer>) {}

  start(rate = 50): void {
    this.timer = setInterval(() => {
      const p = this.request().then((a) => {
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

  failures(since = 0): Answer[] {
    return this.answers.filter((a) => a.start >= since && (a.error !== undefined || a.status < 200 || a.status > 299));
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

export interface WebOptions {
  replicas?: number;
  strategy?: Record<string, unknown>;
}

/** The lab, the stores and the berth processes of one blue-green test file. */
export class BlueGreenLab {
  readonly lab = requireLab();
  readonly etcd = createClient({ endpoints: this.lab.etcdEndpoints, prefix: '/berth' });
  readonly store = new ResourceStore(this.etcd);
  readonly statuses = new StatusStore(this.etcd);
  readonly routes = new RouteStore(this.etcd);
  readonly docker = this.lab.docker();
  /** The route's upstream, `<env>-web`: the Host header nginx routes by. */
  readonly host: string;
  readonly log: string;
  private readonly nginx = new URL(this.lab.nginxUrl);
  private readonly children: ChildProcess[] = [];
  /** `/metrics` URL of each started berth process, by command (`controller`, `proxy`). */
  readonly metricsUrls: Record<string, string> = {};
  private stopping = false;
  /** Added to the environment of the `berth controller` child (at start and at restartController). */
  controllerEnv: NodeJS.ProcessEnv = {};

  constructor(
    readonly env: string,
    readonly group: string,
    readonly nodes: number,
  ) {
    this.host = `${env}-web`;
    this.log = `/tmp/berth-${env}-test-${process.pid}.log`;
  }

  groupSpec(): EnvironmentGroup {
    return parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: this.group }, spec: { nodeSelector: { pool: 'lab' } } }) as EnvironmentGroup;
  }

  envSpec(tag: WebTag, opts: WebOptions = {}): Environment {
    return parseResource({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Environment',
      metadata: { name: this.env },
      spec: {
        group: this.group,
        nodes: this.nodes,
        services: {
          web: {
            image: this.lab.image(tag),
            replicas: opts.replicas ?? 2,
            ports: [{ target: 8080 }],
            placement: { maxPerNode: 1 },
            healthcheck: { test: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/healthz'], interval: '1s', timeout: '1s', retries: 3 },
            strategy: { type: 'blueGreen', drain: '2s', progressDeadline: '30s', ...opts.strategy },
          },
        },
      },
    }) as Environment;
  }

  async apply(tag: WebTag, opts: WebOptions = {}): Promise<void> {
    await this.store.apply(this.envSpec(tag, opts));
  }

  status(): Promise<EnvironmentStatus | undefined> {
    return this.statuses.getStatus('Environment', this.env);
  }

  async route() {
    return (await this.routes.listRoutes()).find((r) => r.upstream === this.host);
  }

  /** The replica count the Swarm holds for a colour's service (undefined: no such service). */
  async replicas(color: Color): Promise<number | undefined> {
    const name = `${this.env}_web_${color}`;
    const list = (await this.docker.listServices({ filters: { name: [name] } } as never)) as unknown as Array<{ Spec: { Name: string; Mode: { Replicated?: { Replicas: number } } } }>;
    const s = list.find((x) => x.Spec.Name === name);
    return s ? (s.Spec.Mode.Replicated?.Replicas ?? 0) : undefined;
  }

  /** Ids of a colour's tasks that run (and so passed their healthcheck). */
  async runningTasks(color: Color): Promise<string[]> {
    const filters = { service: [`${this.env}_web_${color}`], 'desired-state': ['running'] };
    const tasks = (await this.docker.listTasks({ filters } as never)) as unknown as Array<{ ID: string; Status?: { State?: string } }>;
    return tasks.filter((t) => t.Status?.State === 'running').map((t) => t.ID);
  }

  async running(color: Color): Promise<number> {
    return (await this.runningTasks(color)).length;
  }

  async servicesOfEnv(): Promise<Array<{ ID: string; Spec: { Name: string } }>> {
    return (await this.docker.listServices({ filters: { label: [`berth.env=${this.env}`] } } as never)) as never;
  }

  /** One GET through nginx with the route's Host header (another route's with `host`). */
  get(timeoutMs = 5_000, host = this.host): Promise<Answer> {
    const start = Date.now();
    return new Promise((resolve) => {
      const req = http.request({ host: this.nginx.hostname, port: Number(this.nginx.port || 80), path: '/', headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
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

  load(host = this.host): Load {
    return new Load(() => this.get(5_000, host));
  }

  until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
    return until(what, fn, timeoutMs, everyMs, `log: ${this.log}`);
  }

  /** nginx serves only `body`: 10 sequential answers in a row, all `body`. */
  async servingOnly(body: string, timeoutMs = 60_000): Promise<void> {
    let streak = 0;
    await this.until(`nginx serves only ${body}`, async () => {
      const a = await this.get(3_000);
      streak = a.status === 200 && a.body === body ? streak + 1 : 0;
      return streak >= 10;
    }, timeoutMs, 20);
  }

  /** The file's hooks: start before its tests; after them stop `load`, clean up, print `report()`. */
  hooks(load: Load, report: () => string): void {
    before(() => this.start());
    after(async () => {
      await load.stop();
      try {
        await this.stop();
      } finally {
        console.log(report());
      }
    });
  }

  /** The `berth proxy` child (started first), for tests that pause it. */
  get proxyProcess(): ChildProcess {
    return this.children[0]!;
  }

  /** Cleans up what an earlier run left, stores the group, starts `berth proxy` and `berth controller`. */
  async start(): Promise<void> {
    await this.cleanSlate();
    await this.store.apply(this.groupSpec());
    const pidFile = process.env.BERTH_NGINX_PID_FILE;
    await this.startChild('proxy', pidFile ? ['--nginx-pid-file', pidFile] : []);
    await this.startChild('controller', ['--resync', '10s'], this.controllerEnv);
  }

  /** Stops the `berth controller` child and starts it again with `controllerEnv`. */
  async restartController(): Promise<void> {
    const old = this.children.pop()!;
    this.stopping = true;
    await stopChild(old);
    this.stopping = false;
    await this.startChild('controller', ['--resync', '10s'], this.controllerEnv);
  }

  /** Deletes the environment through the controller, then stops the processes and cleans up. */
  async stop(): Promise<void> {
    try {
      await this.store.markDeleted(this.env);
      await this.until(`${this.env} services, status and route gone`, async () => (await this.servicesOfEnv()).length === 0 && !(await this.status()) && !(await this.route()), 60_000, 500);
      await this.store.delete('EnvironmentGroup', this.group, { force: true });
    } finally {
      this.stopping = true;
      for (const child of this.children) await stopChild(child);
      await this.cleanSlate().catch(() => undefined);
      this.etcd.close();
    }
  }

  private async startChild(cmd: string, extra: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
    const out = openSync(this.log, 'a');
    const addr = `127.0.0.1:${await freePort()}`;
    this.metricsUrls[cmd] = `http://${addr}/metrics`;
    const child = spawn(process.execPath, ['bin/berth.js', cmd, '--metrics-addr', addr, ...extra], { env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
    child.once('exit', (code, sig) => {
      if (!this.stopping) console.log(`berth ${cmd} exited early (code ${code}, signal ${sig}); log: ${this.log}`);
    });
    this.children.push(child);
  }

  /** Removes every trace a failed earlier run may have left (the controller is not running). */
  private async cleanSlate(): Promise<void> {
    await this.store.delete('Environment', this.env);
    for (const s of (await this.docker.listServices()) as Array<{ ID: string; Spec: { Name: string } }>) {
      if (s.Spec.Name.startsWith(`${this.env}_`)) await this.docker.getService(s.ID).remove();
    }
    await releaseClaims(this.docker, (env) => env === this.env);
    await this.statuses.deleteStatus('Environment', this.env);
    // Requests a failed earlier run left (an approval would promote at once).
    await clearReleaseRequests(this.etcd, this.env);
    await this.routes.deleteRoute(this.host);
    await this.store.delete('EnvironmentGroup', this.group, { force: true });
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await done;
  clearTimeout(t);
}
