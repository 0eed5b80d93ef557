import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { applyFiles } from '../../src/cli/apply.js';
import type { EtcdClient } from '../../src/store/client.js';
import { TestEtcd, wipe } from '../support/etcd.js';
import { INVALID_CASES, validEnvDoc, validGroupDoc } from '../support/invalid-docs.js';

const PREFIX = '/berth-cli';
const dir = mkdtempSync(join(tmpdir(), 'berth-cli-'));
const write = (name: string, ...docs: unknown[]) => {
  const path = join(dir, name);
  writeFileSync(path, docs.map((d) => stringify(d)).join('---\n'));
  return path;
};

/** Runs the CLI from source (no build needed). */
function berth(endpoint: string, ...args: string[]) {
  const res = spawnSync(
    process.execPath,
    ['--import', 'tsx', '-e', "import('./src/cli/main.ts').then((m) => m.main(['node', 'berth', ...process.argv.slice(1)])).then((c) => { process.exitCode = c; })", ...args, '--etcd-endpoints', endpoint, '--prefix', PREFIX],
    { encoding: 'utf8' },
  );
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('berth apply against a real etcd', () => {
  const etcd = new TestEtcd();
  let client: EtcdClient;
  const keys = async () => (await client.etcd.getAll().prefix(`${PREFIX}/`).keys()).sort();

  before(async () => {
    await etcd.start();
    client = etcd.client(PREFIX);
  });
  after(async () => {
    client?.close();
    await etcd.destroy();
  });
  beforeEach(() => wipe(client));

  it('every invalid document: exit 2, names file:2: field, stores nothing of the file', async () => {
    for (const c of INVALID_CASES) {
      const path = write('case.yaml', validGroupDoc(), c.doc);
      const errors: string[] = [];
      const code = await applyFiles(client, [path], { out: () => undefined, err: (l) => errors.push(l) });
      assert.equal(code, 2, c.name);
      assert.ok(errors.join('\n').includes(`${path}:2: ${c.path}: `), `${c.name}: ${errors.join('\n')}`);
      assert.deepEqual(await keys(), [], c.name);
    }
  });

  it('an environment whose group exists nowhere is refused naming spec.group', async () => {
    const path = write('env.yaml', validEnvDoc());
    const errors: string[] = [];
    assert.equal(await applyFiles(client, [path], { out: () => undefined, err: (l) => errors.push(l) }), 2);
    assert.match(errors[0] ?? '', /env\.yaml:1: spec\.group: /);
    assert.deepEqual(await keys(), []);
  });

  it('a resource in two files: results in file order, groups first, the last file wins', async () => {
    const renamed = (name: string, nodes: number) => ({ ...validEnvDoc(), metadata: { name }, spec: { ...validEnvDoc().spec, nodes } });
    const first = write('a.yaml', renamed('qa-1', 1), renamed('qa-2', 1), validGroupDoc());
    const second = write('b.yaml', renamed('qa-1', 3), renamed('qa-2', 1));
    const lines: string[] = [];
    assert.equal(await applyFiles(client, [first, second], { out: (l) => lines.push(l) }), 0);
    assert.deepEqual(lines, ['environmentgroup/qa-pool created', 'environment/qa-1 created', 'environment/qa-2 created', 'environment/qa-1 configured', 'environment/qa-2 unchanged']);
    const stored = (await client.etcd.get(`${PREFIX}/environments/qa-1`).json()) as { spec: { nodes: number }; metadata: { generation: number } };
    assert.deepEqual([stored.spec.nodes, stored.metadata.generation], [3, 2]);
  });

  it('CLI: apply, re-apply, get, scale, delete; exit codes', () => {
    const file = write('ok.yaml', validEnvDoc(), validGroupDoc());
    let r = berth(etcd.endpoint, 'apply', '-f', file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'environmentgroup/qa-pool created\nenvironment/qa-1 created\n');
    r = berth(etcd.endpoint, 'apply', '-f', dir, '--dry-run');
    assert.match(r.stdout, /environment\/qa-1 unchanged \(dry run\)/);
    r = berth(etcd.endpoint, 'get', 'envs');
    assert.match(r.stdout, /^NAME\s+GROUP\s+NODES\s+PHASE\s+READY\s+AGE\nqa-1\s+qa-pool\s+0\/2\s+-\s+0\/1\s+\d+s\n$/);
    r = berth(etcd.endpoint, 'scale', 'env', 'qa-1', '--nodes', '3');
    assert.equal(r.code, 0, r.stderr);
    r = berth(etcd.endpoint, 'get', 'env', 'qa-1', '-o', 'json');
    const got = JSON.parse(r.stdout);
    assert.equal(got.spec.nodes, 3);
    assert.equal(got.metadata.generation, 2);
    r = berth(etcd.endpoint, 'get', 'env', 'nope');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /environment "nope" not found/);
    r = berth(etcd.endpoint, 'delete', 'group', 'qa-pool');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /still used by environment qa-1/);
    r = berth(etcd.endpoint, 'delete', 'env', 'qa-1');
    assert.equal(r.stdout, 'environment/qa-1 deleted\n');
  });

  it('CLI: invalid input exits 2 and stores nothing', async () => {
    for (const c of INVALID_CASES.slice(0, 3)) {
      const path = write('bad.yaml', validGroupDoc(), c.doc);
      const r = berth(etcd.endpoint, 'apply', '-f', path);
      assert.equal(r.code, 2, c.name);
      assert.ok(r.stderr.includes(`${path}:2: ${c.path}: `), r.stderr);
      assert.deepEqual(await keys(), []);
    }
    const r = berth(etcd.endpoint, 'scale', 'env', 'x', '--nodes', 'many');
    assert.equal(r.code, 2);
  });

  it('CLI: unreachable etcd fails with exit 1 and one clear line', () => {
    const r = berth('http://127.0.0.1:23999', 'get', 'groups');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: .*etcd at http:\/\/127\.0\.0\.1:23999 unreachable: .*\n$/);
  });
});
