import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/lab/exec.js';
import { createClient, type EtcdClient } from '../../src/store/client.js';

/** PEM files: the server's certificate and key, the CA that signs server and clients, and a client's certificate and key. */
export interface EtcdTls {
  cert: string;
  key: string;
  ca: string;
  clientCert: string;
  clientKey: string;
}

/**
 * A private etcd for store tests: /usr/bin/etcd on 127.0.0.1:23790 (peer 23800), a temp data
 * dir, stopped by pid. Not the lab's etcd (2379). `stop()` + `start()` keeps the data.
 */
export class TestEtcd {
  readonly clientPort: number;
  readonly peerPort: number;
  readonly endpoint: string;
  readonly dataDir: string;
  private proc: ChildProcess | undefined;

  private readonly tls: EtcdTls | undefined;

  /** With `tls`, clients must use https and present a certificate signed by `tls.ca`. */
  constructor(opts: { clientPort?: number; peerPort?: number; tls?: EtcdTls } = {}) {
    this.clientPort = opts.clientPort ?? 23790;
    this.peerPort = opts.peerPort ?? 23800;
    this.tls = opts.tls;
    this.endpoint = `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`;
    this.dataDir = mkdtempSync(join(tmpdir(), 'berth-etcd-'));
  }

  async start(): Promise<void> {
    if (this.proc) return;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.proc = spawn(
      process.env.BERTH_TEST_ETCD_BIN ?? '/usr/bin/etcd',
      [
        '--name', 'berth-test',
        '--data-dir', this.dataDir,
        '--listen-client-urls', this.endpoint,
        '--advertise-client-urls', this.endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `berth-test=${peer}`,
        '--log-level', 'error',
        ...(this.tls ? ['--cert-file', this.tls.cert, '--key-file', this.tls.key, '--trusted-ca-file', this.tls.ca, '--client-cert-auth'] : []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? '' } },
    );
    let stderr = '';
    this.proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const proc = this.proc;
    for (let i = 0; i < 200; i++) {
      if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}: ${stderr}`);
      if (await this.healthy()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`etcd on ${this.endpoint} did not become healthy: ${stderr}`);
  }

  private async healthy(): Promise<boolean> {
    if (this.tls) {
      // /health over TLS wants the client certificate: ask etcdctl, which presents it.
      const { ca, clientCert, clientKey } = this.tls;
      const r = await run(
        'etcdctl',
        ['--endpoints', this.endpoint, '--cacert', ca, '--cert', clientCert, '--key', clientKey, '--dial-timeout', '1s', '--command-timeout', '1s', 'endpoint', 'health'],
        { env: { ...process.env, ETCDCTL_API: '3' }, timeoutMs: 5_000 },
      );
      return r.code === 0;
    }
    try {
      const res = await fetch(`${this.endpoint}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  client(prefix = '/berth-test'): EtcdClient {
    return createClient({ endpoints: [this.endpoint], prefix });
  }
}

/** Deletes every key under the prefix. */
export async function wipe(client: EtcdClient): Promise<void> {
  await client.etcd.delete().prefix(`${client.prefix}/`).exec();
}
