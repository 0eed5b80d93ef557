/**
 * The fault suites' hands on the lab: `berth controller` replicas and one `berth proxy` as child
 * processes (node bin/berth.js, lab env) that can be killed, stopped and resumed by pid; the
 * stores to apply specs and read status and routes; requests through the lab's nginx; and the
 * manager's Docker event stream.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import http from 'node:http';
import { createInterface } from 'node:readline';
import type { Environment, EnvironmentStatus } from '../../src/api/index.js';
import { parseResource } from '../../src/api/resource.js';
import { createClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { RouteStore } from '../../src/store/routes.js';
import { StatusStore } from '../../src/store/status.js';
import { freePort, stopChild } from '../support/bluegreen-lab.js';
import { sleep, until } from '../support/poll.js';
import { requireLab } from '../support/lab.js';
import { environmentOf, type Shape, type Version } from './spec.js';
import { releaseClaims } from '../support/claims.js';

export { sleep, until };

export interface Controller {
  name: string;
  child: ChildProcess;
  metricsPort: number;
  stopped: boolean;
}

export interface ServiceEvent {
  at: number;
  name: string;
  attributes: Record<string, string>;
}

export interface DockerService {
  ID: string;
  CreatedAt: string;
  Spec: { Name: string; Labels?: Record<string, string>; Mode: { Replicated?: { Replicas: number } }; TaskTemplate: { ContainerSpec: { Image: string } } };
}

export interface DockerTask {
  ID: string;
  ServiceID: string;
  NodeID: string;
  DesiredState: string;
  Status: { State: string; PortStatus?: { Ports?: Array<{ TargetPort: number; PublishedPort: number }> } };
}

export class FaultLab {
  readonly lab = requireLab();
  readonly etcd = createClient({ endpoints: this.lab.etcdEndpoints, prefix: '/berth' });
  readonly store = new ResourceStore(this.etcd);
  readonly statuses = new StatusStore(this.etcd);
  readonly routes = new RouteStore(this.etcd);
  readonly docker = this.lab.docker();
  readonly log: string;
  readonly controllers: Controller[] = [];
  /**
   * Children that exited without being killed by the suite. berth promises a controller never
   * exits on its own (it steps down and campaigns again); each one is a violation. A replacement
   * controller is started, as a restart policy would, so that the run goes on and shows more.
   */
  readonly exits: string[] = [];
  private proxy: ChildProcess | undefined;
  private readonly nginx = new URL(this.lab.nginxUrl);
  private serial = 0;
  private stopping = false;

  constructor(
    readonly env: string,
    readonly group: string,
  ) {
    this.log = `/tmp/berth-${env}-fault-${process.pid}.log`;
  }

  /** `<env>-<service>`: the route's upstream and the Host header nginx routes by. */
  host(service: 'api' | 'web'): string {
    return `${this.env}-${service}`;
  }

  image = (v: Version): string => this.lab.image(v);

  async applyShape(shape: Shape): Promise<void> {
    await this.store.apply(environmentOf(this.env, this.group, shape, this.image));
  }

  async environment(): Promise<Environment | undefined> {
    return this.store.get('Environment', this.env);
  }

  status(): Promise<EnvironmentStatus | undefined> {
    return this.statuses.getStatus('Environment', this.env);
  }

  async route(service: 'api' | 'web') {
    return (await this.routes.getRoutes([this.host(service)]))[0];
  }

  async services(filters: Record<string, string[]> = {}): Promise<DockerService[]> {
    return (await this.docker.listServices({ filters } as never)) as unknown as DockerService[];
  }

  async tasks(serviceId: string): Promise<DockerTask[]> {
    return (await this.docker.listTasks({ filters: { service: [serviceId] } } as never)) as unknown as DockerTask[];
  }

  /** Node id → address, for task endpoints. */
  async nodeAddrs(): Promise<Map<string, string>> {
    const nodes = (await this.docker.listNodes()) as Array<{ ID: string; Status?: { Addr?: string } }>;
    return new Map(nodes.map((n) => [n.ID, n.Status?.Addr ?? '']));
  }

  /** One GET through nginx with `host` as the Host header: status and trimmed body. */
  get(host: string, timeoutMs = 3_000): Promise<{ status: number; body: string; error?: string }> {
    return new Promise((resolve) => {
      const req = http.request({ host: this.nginx.hostname, port: Number(this.nginx.port || 80), path: '/', headers: { host }, agent: false, timeout: timeoutMs }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
        res.on('error', (e) => resolve({ status: 0, body, error: e.message }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => resolve({ status: 0, body: '', error: e.message }));
      req.end();
    });
  }

  // ---- processes

  async startController(): Promise<Controller> {
    const metricsPort = await freePort();
    const name = `controller-${++this.serial}`;
    const child = this.spawnBerth(name, ['controller', '--metrics-addr', `127.0.0.1:${metricsPort}`, '--resync', '10s'], () => void this.startController());
    const c: Controller = { name, child, metricsPort, stopped: false };
    this.controllers.push(c);
    return c;
  }

  async startProxy(): Promise<void> {
    const pidFile = process.env.BERTH_NGINX_PID_FILE;
    this.proxy = this.spawnBerth('proxy', ['proxy', '--metrics-addr', `127.0.0.1:${await freePort()}`, ...(pidFile ? ['--nginx-pid-file', pidFile] : [])]);
  }

  live(): Controller[] {
    return this.controllers.filter((c) => c.child.exitCode === null && c.child.signalCode === null);
  }

  /** The live, running controllers that report `berth_leader 1` (a stopped one cannot answer). */
  async leaders(): Promise<Controller[]> {
    const out: Controller[] = [];
    for (const c of this.live().filter((x) => !x.stopped)) {
      const text = await fetchText(`http://127.0.0.1:${c.metricsPort}/metrics`).catch(() => '');
      if (/^berth_leader 1$/m.test(text)) out.push(c);
    }
    return out;
  }

  /** Waits until exactly one running controller leads; returns it. */
  async leader(timeoutMs = 30_000): Promise<Controller> {
    return until('one controller leads', async () => {
      const l = await this.leaders();
      return l.length === 1 ? l[0] : undefined;
    }, timeoutMs, 100);
  }

  async kill9(c: Controller): Promise<void> {
    const exited = new Promise((r) => c.child.once('exit', r));
    c.child.kill('SIGKILL');
    await exited;
  }

  pause(c: Controller): void {
    c.child.kill('SIGSTOP');
    c.stopped = true;
  }

  resume(c: Controller): void {
    c.child.kill('SIGCONT');
    c.stopped = false;
  }

  private spawnBerth(name: string, args: string[], restart?: () => void): ChildProcess {
    const out = openSync(this.log, 'a');
    const child = spawn(process.execPath, ['bin/berth.js', ...args], { env: process.env, stdio: ['ignore', out, out] });
    child.once('exit', (code, sig) => {
      if (this.stopping || sig === 'SIGKILL') return;
      this.exits.push(`berth ${name} (pid ${child.pid}) exited by itself (code ${code}, signal ${sig})`);
      console.log(`${this.exits.at(-1)}; log: ${this.log}`);
      restart?.();
    });
    return child;
  }

  /** The unexpected exits since the last call. */
  takeExits(): string[] {
    return this.exits.splice(0);
  }

  // ---- Docker events

  /** Collects the manager's service update events until the returned function is called. */
  async watchServiceUpdates(): Promise<{ events: ServiceEvent[]; stop: () => void }> {
    const stream = (await this.docker.getEvents({ filters: { type: ['service'], event: ['update'] } } as never)) as unknown as NodeJS.ReadableStream & { destroy(): void };
    const events: ServiceEvent[] = [];
    const lines = createInterface({ input: stream });
    lines.on('line', (line) => {
      try {
        const e = JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> }; timeNano?: number };
        const attributes = e.Actor?.Attributes ?? {};
        events.push({ at: Date.now(), name: attributes.name ?? '', attributes });
      } catch {
        // a partial line at the end of the stream
      }
    });
    return { events, stop: () => stream.destroy() };
  }

  // ---- setup and teardown

  /** Cleans what an earlier run left, stores the group, starts the proxy and `controllers` controllers. */
  async start(controllers: number): Promise<void> {
    await this.cleanSlate();
    await this.store.apply(parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: this.group }, spec: { nodeSelector: { pool: 'lab' } } }));
    await this.startProxy();
    for (let i = 0; i < controllers; i++) await this.startController();
    await this.leader();
  }

  /** Deletes the environment through the controller, then stops every child and cleans up. */
  async stop(): Promise<void> {
    try {
      for (const c of this.live()) if (c.stopped) this.resume(c);
      await this.deleteEnvironment().catch((err: Error) => console.log(`teardown: ${err.message}; cleaning up by hand`));
      await this.store.delete('EnvironmentGroup', this.group, { force: true });
    } finally {
      this.stopping = true;
      for (const c of this.live()) if (c.stopped) this.resume(c);
      for (const c of this.controllers) await stopChild(c.child);
      if (this.proxy) await stopChild(this.proxy);
      await this.cleanSlate().catch(() => undefined);
      this.etcd.close();
    }
  }

  /** `berth delete env` and wait until the controller removed its services, status and routes. */
  async deleteEnvironment(timeoutMs = 90_000): Promise<void> {
    await this.store.markDeleted(this.env);
    await until(
      `${this.env} services, status and routes gone`,
      async () => (await this.services({ label: [`berth.env=${this.env}`] })).length === 0 && !(await this.status()) && !(await this.route('api')) && !(await this.route('web')),
      timeoutMs,
      250,
    );
  }

  /** Removes every trace a failed earlier run may have left (no controller is running). */
  private async cleanSlate(): Promise<void> {
    await this.store.delete('Environment', this.env);
    for (const s of await this.services()) {
      if (s.Spec.Name.startsWith(`${this.env}_`)) await this.docker.getService(s.ID).remove();
    }
    await releaseClaims(this.docker, (env) => env === this.env);
    await this.statuses.deleteStatus('Environment', this.env);
    await this.routes.deleteRoute(this.host('api'));
    await this.routes.deleteRoute(this.host('web'));
    await this.store.delete('EnvironmentGroup', this.group, { force: true });
  }
}


function fetchText(url: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
