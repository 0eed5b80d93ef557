import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startSimServer, type SimServer } from '../../src/sim/server.js';

/*
 * Fidelity check of the simulator: the real docker CLI against it. Every docker client binary on
 * this machine is tried (the lab's Debian docker.io is 20.10; a newer CLI negotiates down to the
 * simulator's API 1.41). No lab needed, only the binaries.
 */

const run = promisify(execFile);

function dockerBinaries(): string[] {
  const found = new Set<string>();
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat('/usr/bin')) {
    const p = join(dir, 'docker');
    if (dir && existsSync(p)) found.add(realpathSync(p));
  }
  return [...found];
}

const binaries = dockerBinaries();
if (binaries.length === 0) test('docker CLI against the simulator', { skip: 'no docker client binary on this machine' }, () => {});

for (const bin of binaries) {
  describe(`${bin} against berth sim`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-sim-cli-'));
    const socketPath = join(dir, 'docker.sock');
    let sim: SimServer;
    const docker = async (...args: string[]) => {
      const { stdout, stderr } = await run(bin, args, {
        env: { PATH: process.env.PATH ?? '', HOME: dir, DOCKER_CONFIG: join(dir, 'config'), DOCKER_HOST: `unix://${socketPath}` },
        timeout: 60_000,
      });
      return { stdout, stderr };
    };
    const rows = (out: string) => out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));

    before(async () => {
      sim = await startSimServer({ socketPath, nodes: 6, nodeLabels: { pool: 'qa' }, latencyMs: 2, taskStartMs: 100, taskStopMs: 50 });
    });
    after(async () => {
      await sim?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test('docker node ls lists sim-1…6, Ready and Active, sim-1 the leader and "self"', async () => {
      const { stdout } = await docker('node', 'ls');
      assert.match(stdout.split('\n')[0]!, /^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION/);
      const r = rows(stdout);
      assert.deepEqual(r.map((c) => c.filter((x) => x !== '*')[1]), ['sim-1', 'sim-2', 'sim-3', 'sim-4', 'sim-5', 'sim-6']);
      assert.deepEqual(r[0]!.slice(1), ['*', 'sim-1', 'Ready', 'Active', 'Leader', '20.10.24']);
      assert.deepEqual(r[1]!.slice(1), ['sim-2', 'Ready', 'Active', '20.10.24']);
    });

    test('service create (waiting for convergence), ls, ps, scale, node update, rm', async () => {
      const created = await docker('service', 'create', '--name', 'x', '--replicas', '2', '--constraint', 'node.labels.zone==a', 'busybox:latest');
      assert.match(created.stdout.split('\n')[0]!, /^[0-9a-z]{25}$/, 'the new service id first');
      assert.match(created.stdout + created.stderr, /converged/);

      const ls = await docker('service', 'ls');
      assert.deepEqual(rows(ls.stdout).map((c) => c.slice(1)), [['x', 'replicated', '2/2', 'busybox:latest']]);

      const ps = await docker('service', 'ps', 'x');
      const tasks = rows(ps.stdout).map((c) => ({ name: c[1], node: c[3], desired: c[4], current: c[5] }));
      assert.deepEqual(tasks.map((t) => [t.name, t.desired, t.current]), [['x.1', 'Running', 'Running'], ['x.2', 'Running', 'Running']]);
      assert.deepEqual(tasks.map((t) => t.node).sort(), ['sim-1', 'sim-4'], 'zone a: sim-1 and sim-4');

      const scaled = await docker('service', 'scale', 'x=3');
      assert.match(scaled.stdout, /x scaled to 3/);
      assert.match(scaled.stdout + scaled.stderr, /converged/);
      assert.deepEqual(rows((await docker('service', 'ls')).stdout).map((c) => c[3]), ['3/3']);

      const labelled = await docker('node', 'update', '--label-add', 'k=v', 'sim-1');
      assert.equal(labelled.stdout.trim(), 'sim-1');
      const labels = JSON.parse((await docker('node', 'inspect', 'sim-1', '--format', '{{json .Spec.Labels}}')).stdout) as Record<string, string>;
      assert.deepEqual(labels, { pool: 'qa', zone: 'a', k: 'v' });

      const removed = await docker('service', 'rm', 'x');
      assert.equal(removed.stdout.trim(), 'x');
      assert.deepEqual(rows((await docker('service', 'ls')).stdout), []);
    });
  });
}
