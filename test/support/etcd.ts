import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type EtcdClient } from '../../src/store/client.js';

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

  constructor(opts: { clientPort?: number; peerPort?: number } = {}) {
    this.clientPort = opts.clientPort ?? 23790;
    this.peerPort = opts.peerPort ?? 23800;
    this.endpoint = `http://127.0.0.1:${this.clientPort}`;
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
      try {
        const res = await fetch(`${this.endpoint}/health`);
        if (res.ok && ((await res.json()) as { health?: string }).health === 'true') return;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`etcd on ${this.endpoint} did not become healthy: ${stderr}`);
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
