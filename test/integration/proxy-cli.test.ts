import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RouteStore } from '../../src/store/routes.js';
import { TestEtcd } from '../support/etcd.js';
import { until } from '../support/proxy-harness.js';

/**
 * `berth proxy` as a child process configured only by environment (what `eval "$(berth lab env)"`
 * provides), against a REAL private etcd (127.0.0.1:23795). Check/reload commands are stand-ins
 * that log; the real-nginx path is covered by proxy-nginx.test.ts. First SIGTERM → exit 0.
 */
const etcd = new TestEtcd({ clientPort: 23795, peerPort: 23805 });
const dir = mkdtempSync(join(tmpdir(), 'berth-proxy-cli-'));

before(() => etcd.start());
after(async () => {
  await etcd.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('bare `berth proxy` driven by BERTH_* env writes the file, checks, reloads, and stops on SIGTERM', async () => {
  const conf = join(dir, 'upstreams.conf');
  const calls = join(dir, 'calls');
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(process.argv.slice(0, 1).concat(['berth', 'proxy', '--metrics-addr', '127.0.0.1:19465'])); })"], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: {
      // Only the variables below configure it: none of the lab's BERTH_* (e.g. its nginx pid file).
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BERTH_'))),
      BERTH_ETCD_ENDPOINTS: etcd.endpoint,
      BERTH_PREFIX: '/berth-cli-test',
      BERTH_NGINX_CONF: conf,
      BERTH_NGINX_LISTEN: '127.0.0.1:18099',
      BERTH_NGINX_CHECK_CMD: `echo check >> ${calls}`,
      BERTH_NGINX_RELOAD_CMD: `echo reload >> ${calls}`,
      BERTH_PROXY_ID: 'edge-test',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const client = etcd.client('/unused');
  try {
    const revision = await new RouteStore(client, '/berth-cli-test/routes').setRoute({ upstream: 'qa-1-api', servers: ['10.77.0.11:30001'], owner: { env: 'qa-1', service: 'api' } });
    await until('file rendered', () => existsSync(conf) && readFileSync(conf, 'utf8').includes('server 10.77.0.11:30001'), 15_000);
    assert.match(readFileSync(conf, 'utf8'), /listen 127\.0\.0\.1:18099;/);
    await until('reloaded', () => existsSync(calls) && readFileSync(calls, 'utf8').includes('reload'));
    // The counter moves once the reload command has returned, just after it wrote its line.
    const reloaded = /berth_proxy_reloads_total\{result="reloaded"\} [12]\n/;
    await until('reload counted', async () => reloaded.test(await fetch('http://127.0.0.1:19465/metrics').then((r) => r.text())), 5_000);
    // The acknowledgement: registered on a lease, holding the revision nginx now serves.
    const key = '/berth-cli-test/proxies/edge-test';
    await until('acknowledged', async () => JSON.parse((await client.etcd.get(key).string()) ?? '{}').revision === revision);
    assert.ok((await client.etcd.get(key).exec()).kvs[0]!.lease !== '0', 'the registration is bound to a lease');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.equal(await client.etcd.get(key).string(), null, 'a proxy that stops cleanly revokes its registration');
  } finally {
    client.close();
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
