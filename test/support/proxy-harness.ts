/**
 * Real parts for the routing tests and the cutover bench: a private etcd (test/support/etcd.ts
 * on its own ports), a real nginx (/usr/sbin/nginx) with its own temp prefix and main config,
 * tiny loopback HTTP backends, and berth proxy in-process. Every process is stopped by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { NginxProxy } from '../../src/routing/proxy.js';
import { RouteStore } from '../../src/store/routes.js';
import type { EtcdClient } from '../../src/store/client.js';
import { TestEtcd } from './etcd.js';

export const NGINX_BIN = process.env.BERTH_TEST_NGINX_BIN ?? '/usr/sbin/nginx';

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class TestNginx {
  readonly dir: string;
  readonly mainConf: string;
  readonly upstreamsConf: string;
  readonly listen: string;
  readonly pidFile: string;
  private proc: ChildProcess | undefined;

  constructor(readonly port: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'berth-nginx-'));
    this.mainConf = join(this.dir, 'nginx.conf');
    this.upstreamsConf = join(this.dir, 'upstreams.conf');
    this.listen = `127.0.0.1:${port}`;
    this.pidFile = join(this.dir, 'nginx.pid');
  }

  private argv(...extra: string[]): string[] {
    return ['-p', this.dir, '-e', join(this.dir, 'error.log'), '-c', this.mainConf, ...extra];
  }
  get checkCmd(): string {
    return [NGINX_BIN, ...this.argv('-t', '-q')].map(q).join(' ');
  }
  get reloadCmd(): string {
    return [NGINX_BIN, ...this.argv('-s', 'reload')].map(q).join(' ');
  }

  async start(): Promise<void> {
    const t = join(this.dir, 'tmp');
    mkdirSync(t, { recursive: true });
    writeFileSync(
      this.mainConf,
      `daemon off;
master_process on;
worker_processes 1;
pid ${this.pidFile};
error_log ${join(this.dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${t}/cb; proxy_temp_path ${t}/p; fastcgi_temp_path ${t}/f; uwsgi_temp_path ${t}/u; scgi_temp_path ${t}/s;
  server_names_hash_bucket_size 128;
  server { listen ${this.listen} default_server; location / { return 404 "no route\\n"; } }
  include ${this.upstreamsConf};
}
`,
    );
    writeFileSync(this.upstreamsConf, '# empty until routes exist\n');
    this.proc = spawn(NGINX_BIN, this.argv(), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    this.proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 100; i++) {
      if (this.proc.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      try {
        await get(this.port, 'nobody');
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`nginx on ${this.listen} did not answer: ${stderr}`);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGQUIT'); // graceful shutdown of master and workers
      await Promise.race([exited, sleep(5_000)]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Backend {
  server: http.Server;
  addr: string;
  body: string;
  hits: number;
}

export async function startBackend(body: string): Promise<Backend> {
  const b = { body, hits: 0 } as Backend;
  b.server = http.createServer((_req, res) => {
    b.hits++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body);
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  b.addr = `127.0.0.1:${(b.server.address() as AddressInfo).port}`;
  return b;
}

export async function stopBackend(b: Backend): Promise<void> {
  b.server.closeAllConnections();
  await new Promise((r) => b.server.close(r));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function get(port: number, host: string, agent?: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: agent ?? false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Polls until `fn` returns true (or throws after `timeoutMs`). */
export async function until(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 10_000, everyMs = 20): Promise<number> {
  const start = performance.now();
  for (;;) {
    try {
      if (await fn()) return performance.now() - start;
    } catch {
      /* not yet */
    }
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface RoutingRig {
  etcd: TestEtcd;
  client: EtcdClient;
  routes: RouteStore;
  nginx: TestNginx;
  proxy: NginxProxy;
  prefix: string;
  stop(): Promise<void>;
}

/** etcd + nginx + berth proxy (in-process), wired on their own ports and prefix. */
export async function startRig(opts: {
  etcdPort: number;
  nginxPort: number;
  prefix: string;
  coalesceMs?: number;
  checkCmd?: (nginx: TestNginx) => string;
}): Promise<RoutingRig> {
  const etcd = new TestEtcd({ clientPort: opts.etcdPort, peerPort: opts.etcdPort + 10 });
  await etcd.start();
  const client = etcd.client('/unused');
  await client.etcd.delete().prefix(`${opts.prefix}/`).exec();
  const routes = new RouteStore(client, opts.prefix);
  const nginx = new TestNginx(opts.nginxPort);
  try {
    await nginx.start();
  } catch (err) {
    client.close();
    await etcd.destroy();
    throw err;
  }
  const log = pino({ level: process.env.BERTH_TEST_LOG ?? 'silent' });
  const proxy = new NginxProxy(routes, {
    confPath: nginx.upstreamsConf,
    listen: nginx.listen,
    checkCmd: opts.checkCmd ? opts.checkCmd(nginx) : nginx.checkCmd,
    reloadCmd: nginx.reloadCmd,
    coalesceMs: opts.coalesceMs ?? 300,
    pidFile: nginx.pidFile,
    log,
  });
  proxy.start();
  await until('proxy initial sync', () => proxy.ready, 10_000);
  return {
    etcd,
    client,
    routes,
    nginx,
    proxy,
    prefix: opts.prefix,
    async stop() {
      await proxy.stop().catch(() => undefined);
      client.close();
      await nginx.stop().catch(() => undefined);
      await etcd.destroy().catch(() => undefined);
    },
  };
}
