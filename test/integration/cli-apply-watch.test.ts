import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { ResourceStore } from '../../src/store/resources.js';
import type { EtcdClient } from '../../src/store/client.js';
import { TestEtcd } from '../support/etcd.js';
import { validEnvDoc, validGroupDoc } from '../support/invalid-docs.js';
import { until } from '../support/proxy-harness.js';

/**
 * `berth apply --watch` as a user runs it, against a real private etcd (127.0.0.1:23797): a saved
 * edit is re-applied, an invalid save is reported with file, document and field while what is
 * stored stays, a fix is applied again, and Ctrl-C ends it with exit 0.
 */
const PREFIX = '/berth-watch';
const etcd = new TestEtcd({ clientPort: 23797, peerPort: 23807 });
const dir = mkdtempSync(join(tmpdir(), 'berth-apply-watch-'));
let client: EtcdClient;

before(async () => {
  await etcd.start();
  client = etcd.client(PREFIX);
});
after(async () => {
  client.close();
  await etcd.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('apply --watch re-applies saved edits, reports invalid ones and keeps watching', async () => {
  const file = join(dir, 'env.yaml');
  const save = (edit: (env: ReturnType<typeof validEnvDoc>) => void) => {
    const env = validEnvDoc();
    edit(env);
    writeFileSync(file, `${stringify(validGroupDoc())}---\n${stringify(env)}`);
  };
  save(() => {});
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '-e', "import('./src/cli/main.ts').then((m) => m.main(['node', 'berth', ...process.argv.slice(1)])).then((c) => { process.exitCode = c; })",
      'apply', '--watch', '-f', dir, '--etcd-endpoints', etcd.endpoint, '--prefix', PREFIX],
    { cwd: new URL('../..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const store = new ResourceStore(client);
  const nodes = async () => (await store.get('Environment', 'qa-1'))?.spec.nodes;
  try {
    await until('initial apply and watch started', () => stderr.includes('watching'), 20_000, 100);
    assert.match(stdout, /environment\/qa-1 created/);
    assert.equal(await nodes(), 2);

    save((env) => (env.spec.nodes = 3));
    await until('edit applied', async () => (await nodes()) === 3, 10_000, 100);
    assert.equal((await store.get('Environment', 'qa-1'))?.metadata.generation, 2);

    save((env) => (env.spec.services.api.replicas = -1));
    await until('invalid save reported', () => stderr.includes('spec.services.api.replicas'), 10_000, 100);
    assert.match(stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: spec\\.services\\.api\\.replicas: `));
    assert.equal(await nodes(), 3, 'an invalid save stores nothing');
    assert.equal(child.exitCode, null, 'still watching after an invalid save');

    save((env) => (env.spec.nodes = 1));
    await until('fixed save applied', async () => (await nodes()) === 1, 10_000, 100);

    child.kill('SIGINT');
    assert.equal(await exited, 0, stderr);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
