/**
 * berth against a secured etcd, each a private etcd on loopback (temp dir, stopped by pid):
 * one with client-certificate TLS (127.0.0.1:23796), one with authentication enabled
 * (127.0.0.1:23795). `berth apply`, `berth get` and `berth controller` (on the lab's Swarm, keys
 * under its own prefix) work with BERTH_ETCD_CA/CERT/KEY or BERTH_ETCD_USERNAME/PASSWORD_FILE,
 * and fail without them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run, runOk } from '../../src/lab/exec.js';
import { createClient, storeConfig } from '../../src/store/client.js';
import { TestEtcd } from '../support/etcd.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-etcd-security-'));
const groupFile = path.join(dir, 'group.yaml');
fs.writeFileSync(groupFile, 'apiVersion: berth.dev/v1alpha1\nkind: EnvironmentGroup\nmetadata: { name: secure-pool }\nspec: { nodeSelector: { pool: lab } }\n');
const file = (name: string) => path.join(dir, name);

/** berth with only PATH, the Docker host and the given variables: nothing of the lab's etcd settings leaks in. */
/** What every berth this file starts gets, besides its connection settings: nothing of the caller's BERTH_* leaks in. */
const withBase = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, DOCKER_HOST: process.env.DOCKER_HOST, BERTH_PREFIX: '/secure-test', ...env });
const berth = (args: string[], env: NodeJS.ProcessEnv) => run(process.execPath, [path.join(ROOT, 'bin/berth.js'), ...args], { env: withBase(env) });

/** Starts `berth controller` with `env`, waits until it is elected (its election key exists), stops it. */
async function controllerElected(env: NodeJS.ProcessEnv, metricsPort: number): Promise<void> {
  const fullEnv = withBase(env);
  const log = file(`controller-${metricsPort}.log`);
  const out = fs.openSync(log, 'a');
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/berth.js'), 'controller', '--metrics-addr', `127.0.0.1:${metricsPort}`], { env: fullEnv, stdio: ['ignore', out, out] });
  const client = createClient(storeConfig({}, fullEnv));
  try {
    for (let i = 0; ; i++) {
      const keys = await client.etcd.getAll().prefix('/secure-test/leader/').keys().catch(() => [] as string[]);
      if (keys.length > 0) return;
      if (child.exitCode !== null) throw new Error(`controller exited ${child.exitCode}: ${fs.readFileSync(log, 'utf8').slice(-1500)}`);
      if (i > 60) throw new Error(`controller not elected in 30 s: ${fs.readFileSync(log, 'utf8').slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    client.close();
  }
}

after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** `berth apply` of the group, then `berth get` of it, with these connection settings: both must work. */
async function applyAndGet(env: NodeJS.ProcessEnv): Promise<void> {
  const applied = await berth(['apply', '-f', groupFile], env);
  assert.equal(applied.code, 0, applied.stderr);
  const got = await berth(['get', 'groups', 'secure-pool', '-o', 'json'], env);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /"secure-pool"/);
}

describe('etcd with client-certificate TLS', () => {
  let etcd: TestEtcd;
  const creds = () => ({ BERTH_ETCD_ENDPOINTS: '127.0.0.1:23796', BERTH_ETCD_CA: file('ca.pem'), BERTH_ETCD_CERT: file('client.pem'), BERTH_ETCD_KEY: file('client.key') });

  before(async () => {
    const ssl = (...args: string[]) => runOk('openssl', args, { timeoutMs: 30_000 });
    await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', '/CN=berth-test-ca');
    for (const [name, usage] of [['server', 'serverAuth'], ['client', 'clientAuth']] as const) {
      fs.writeFileSync(file(`${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
      await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=berth-test-${name}`);
      await ssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file(`${name}.pem`), '-days', '2', '-extfile', file(`${name}.ext`));
    }
    etcd = new TestEtcd({ clientPort: 23796, peerPort: 23806, tls: { cert: file('server.pem'), key: file('server.key'), ca: file('ca.pem'), clientCert: file('client.pem'), clientKey: file('client.key') } });
    await etcd.start();
  });
  after(async () => etcd?.destroy());

  test('apply and get over TLS with a client certificate (a bare endpoint becomes https)', async () => {
    await applyAndGet(creds());
  });

  test('without the client certificate the TLS etcd refuses', async () => {
    const got = await berth(['get', 'groups'], { BERTH_ETCD_ENDPOINTS: '127.0.0.1:23796', BERTH_ETCD_CA: file('ca.pem') });
    assert.equal(got.code, 1);
  });

  test('the controller is elected on the TLS etcd', async () => {
    await controllerElected(creds(), 19496);
  });
});

describe('etcd with authentication', () => {
  const etcd = new TestEtcd({ clientPort: 23795, peerPort: 23805 });
  const creds = () => ({ BERTH_ETCD_ENDPOINTS: etcd.endpoint, BERTH_ETCD_USERNAME: 'root', BERTH_ETCD_PASSWORD_FILE: file('password') });

  before(async () => {
    await etcd.start();
    const ctl = (...args: string[]) => runOk('etcdctl', ['--endpoints', etcd.endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
    await ctl('user', 'add', 'root', '--new-user-password=s3cret pass');
    await ctl('auth', 'enable');
    fs.writeFileSync(file('password'), 's3cret pass\n', { mode: 0o600 });
  });
  after(async () => etcd.destroy());

  test('apply and get log in with a username and a password file', async () => {
    await applyAndGet(creds());
  });

  test('without credentials the same etcd refuses, and berth says so', async () => {
    const got = await berth(['get', 'groups'], { BERTH_ETCD_ENDPOINTS: etcd.endpoint });
    assert.equal(got.code, 1);
    assert.match(got.stderr, /etcd/i);
  });

  test('a username without a password file is bad usage (exit 2)', async () => {
    const got = await berth(['get', 'groups'], { BERTH_ETCD_ENDPOINTS: etcd.endpoint, BERTH_ETCD_USERNAME: 'root' });
    assert.equal(got.code, 2, got.stderr);
    assert.match(got.stderr, /BERTH_ETCD_PASSWORD_FILE/);
  });

  test('the controller is elected on the etcd with authentication', async () => {
    await controllerElected(creds(), 19497);
  });
});
