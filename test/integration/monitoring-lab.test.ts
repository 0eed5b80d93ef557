/**
 * deploy/prometheus/ against a running berth: promtool accepts the config and the rules;
 * Prometheus (Debian's, on 127.0.0.1:19490, temp dir, stopped by pid) scrapes a controller and
 * a proxy started here (keys under /berth-mon; the proxy writes a temp file and drives no
 * nginx), both targets are up, and BerthProxyDown fires once the proxy is stopped. The rules
 * run with their `for:` durations cut to 0 so that the test takes seconds, not minutes.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runOk } from '../../src/lab/exec.js';
import { createClient } from '../../src/store/client.js';
import { requireLab } from '../support/lab.js';
import { until as poll } from '../support/poll.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const lab = requireLab();
const PREFIX = '/berth-mon';
const PROM = '127.0.0.1:19490';
const CONTROLLER = '127.0.0.1:19491';
const PROXY = '127.0.0.1:19492';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-monitoring-test-'));
const children: ChildProcess[] = [];
let proxy: ChildProcess;

/** The lab's environment without what would make the proxy drive the lab's own nginx. */
const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BERTH_NGINX_'))), BERTH_PREFIX: PREFIX };

function start(args: string[], log: string): ChildProcess {
  const out = fs.openSync(path.join(dir, log), 'a');
  const child = spawn(args[0]!, args.slice(1), { env, stdio: ['ignore', out, out] });
  children.push(child);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000) => poll(what, fn, timeoutMs, 500);

async function prom<T>(api: string): Promise<T> {
  const res = await fetch(`http://${PROM}/api/v1/${api}`, { signal: AbortSignal.timeout(3_000) });
  return ((await res.json()) as { data: T }).data;
}

const firing = async () =>
  (await prom<{ alerts: Array<{ labels: { alertname: string }; state: string }> }>('alerts')).alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname);

before(async () => {
  const rules = fs.readFileSync(path.join(ROOT, 'deploy/prometheus/berth-alerts.yml'), 'utf8').replace(/^(\s+)for: \S+$/gm, '$1for: 0s');
  fs.writeFileSync(path.join(dir, 'berth-alerts.yml'), rules);
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [berth-alerts.yml]
scrape_configs:
  - { job_name: berth-controller, static_configs: [{ targets: ['${CONTROLLER}'] }] }
  - { job_name: berth-proxy, static_configs: [{ targets: ['${PROXY}'] }] }
`,
  );
  const berth = [process.execPath, path.join(ROOT, 'bin/berth.js')];
  start([...berth, 'controller', '--metrics-addr', CONTROLLER], 'controller.log');
  proxy = start(
    [...berth, 'proxy', '--nginx-conf', path.join(dir, 'upstreams.conf'), '--check-cmd', 'true', '--reload-cmd', 'true', '--proxy-id', 'monitoring-test', '--metrics-addr', PROXY],
    'proxy.log',
  );
  start(['prometheus', `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=${PROM}`], 'prometheus.log');
});

after(async () => {
  for (const c of children) await stop(c);
  const etcd = createClient({ endpoints: lab.etcdEndpoints, prefix: PREFIX });
  await etcd.etcd.delete().prefix(`${PREFIX}/`).exec();
  etcd.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('promtool accepts the shipped scrape config and alert rules, and the rules pass their unit tests', async () => {
  assert.match(await runOk('promtool', ['check', 'config', path.join(ROOT, 'deploy/prometheus/prometheus.yml')]), /SUCCESS/);
  assert.match(await runOk('promtool', ['check', 'rules', path.join(ROOT, 'deploy/prometheus/berth-alerts.yml')]), /SUCCESS: \d+ rules found/);
  // berth-alerts.test.yml: BerthJobNoRecentSuccess fires past two intervals, not before, and not for a job that succeeds.
  assert.match(await runOk('promtool', ['test', 'rules', path.join(ROOT, 'deploy/prometheus/berth-alerts.test.yml')]), /SUCCESS/);
});

test('Prometheus scrapes the controller and the proxy; nothing fires while both are up and one leads', async () => {
  await until('both targets up', async () => {
    const { activeTargets } = await prom<{ activeTargets: Array<{ labels: { job: string }; health: string }> }>('targets');
    const up = activeTargets.filter((t) => t.health === 'up').map((t) => t.labels.job).sort();
    return up.join(',') === 'berth-controller,berth-proxy' ? true : undefined;
  });
  await until('the leader is scraped', async () => {
    const { result } = await prom<{ result: Array<{ value: [number, string] }> }>('query?query=sum(berth_leader)');
    return result[0]?.value[1] === '1' ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 3_000)); // a few evaluations
  const now = await firing();
  assert.ok(!now.includes('BerthProxyDown') && !now.includes('BerthNoLeader') && !now.includes('BerthControllerDown'), now.join(','));
});

test('BerthProxyDown fires when the proxy stops', async () => {
  await stop(proxy);
  const alerts = await until('BerthProxyDown firing', async () => ((await firing()).includes('BerthProxyDown') ? firing() : undefined), 30_000);
  assert.ok(alerts.includes('BerthProxyDown'));
  assert.ok(!alerts.includes('BerthControllerDown'));
});
