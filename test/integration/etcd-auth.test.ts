/**
 * berth against an etcd with authentication enabled: a private etcd (127.0.0.1:23795, temp dir,
 * stopped by pid) with a root user; `berth apply` and `berth get` log in with
 * BERTH_ETCD_USERNAME / BERTH_ETCD_PASSWORD_FILE, and fail without them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { run, runOk } from '../../src/lab/exec.js';
import { TestEtcd } from '../support/etcd.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const etcd = new TestEtcd({ clientPort: 23795, peerPort: 23805 });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-etcd-auth-'));
const passwordFile = path.join(dir, 'password');
const groupFile = path.join(dir, 'group.yaml');

const berth = (args: string[], env: NodeJS.ProcessEnv) =>
  run(process.execPath, [path.join(ROOT, 'bin/berth.js'), ...args], { env: { PATH: process.env.PATH, BERTH_ETCD_ENDPOINTS: etcd.endpoint, BERTH_PREFIX: '/auth-test', ...env } });

before(async () => {
  await etcd.start();
  const ctl = (...args: string[]) => runOk('etcdctl', ['--endpoints', etcd.endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
  await ctl('user', 'add', 'root', '--new-user-password=s3cret pass');
  await ctl('auth', 'enable');
  fs.writeFileSync(passwordFile, 's3cret pass\n', { mode: 0o600 });
  fs.writeFileSync(groupFile, 'apiVersion: berth.dev/v1alpha1\nkind: EnvironmentGroup\nmetadata: { name: auth-pool }\nspec: { nodeSelector: { pool: lab } }\n');
});

after(async () => {
  await etcd.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('apply and get log in with a username and a password file', async () => {
  const creds = { BERTH_ETCD_USERNAME: 'root', BERTH_ETCD_PASSWORD_FILE: passwordFile };
  const applied = await berth(['apply', '-f', groupFile], creds);
  assert.equal(applied.code, 0, applied.stderr);
  const got = await berth(['get', 'groups', 'auth-pool', '-o', 'json'], creds);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /"auth-pool"/);
});

test('without credentials the same etcd refuses, and berth says so', async () => {
  const got = await berth(['get', 'groups'], {});
  assert.equal(got.code, 1);
  assert.match(got.stderr, /etcd/i);
});

test('a username without a password file is bad usage (exit 2)', async () => {
  const got = await berth(['get', 'groups'], { BERTH_ETCD_USERNAME: 'root' });
  assert.equal(got.code, 2, got.stderr);
  assert.match(got.stderr, /BERTH_ETCD_PASSWORD_FILE/);
});
