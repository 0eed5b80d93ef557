/**
 * Cutover latency: time from setRoute (the green is healthy and its servers are written in one
 * etcd txn) until nginx serves ONLY green, over 20 cutovers, for each coalesce setting.
 *
 * Real parts: private etcd (127.0.0.1:23793), real nginx (127.0.0.1:18082, own temp config),
 * berth proxy in-process (watch → render → write → nginx -t → nginx -s reload → old workers
 * retired), two loopback backends answering v1 / v2. No Swarm: the backends stand in for the
 * blue and green tasks, so this measures the routing path only.
 *
 * Measured per cutover, from just before setRoute:
 *   firstGreen  the first request answered by green
 *   onlyGreen   the start of the first request after which no request got blue (2 clients loop
 *               back-to-back requests, new connection each)
 *   confirmed   berth proxy reports the reload done (old nginx workers stopped accepting)
 *
 * Run: npx tsx bench/cutover-latency.ts [--cutovers 20] [--out bench/results]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { get, sleep, startBackend, startRig, stopBackend } from '../test/support/proxy-harness.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const CUTOVERS = Number(arg('cutovers', '20'));
const OUT = arg('out', 'bench/results');
const PORT = 18082;
const HOST = 'bench-svc';
const owner = { env: 'bench', service: 'svc' };

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const r1 = (x: number) => Math.round(x * 10) / 10;

async function runSetting(coalesceMs: number) {
  const v1 = await startBackend('v1');
  const v2 = await startBackend('v2');
  const rig = await startRig({ etcdPort: 23793, nginxPort: PORT, prefix: '/berth-bench/routes', coalesceMs });
  const backends = [v1, v2];
  const rows: { firstGreen: number; onlyGreen: number; confirmed: number }[] = [];
  try {
    let cur = 0;
    await rig.routes.setRoute({ upstream: HOST, servers: [v1.addr], color: 'blue', owner });
    while ((await get(PORT, HOST).catch(() => ({ body: '' }))).body !== 'v1') await sleep(20);
    await sleep(coalesceMs + 500);
    for (let k = 0; k < CUTOVERS; k++) {
      const next = 1 - cur;
      const oldBody = backends[cur]!.body;
      const newBody = backends[next]!.body;
      const samples: { start: number; body: string }[] = [];
      let stop = false;
      const client = async () => {
        while (!stop) {
          const start = performance.now();
          const r = await get(PORT, HOST).catch(() => ({ body: 'error', status: 0 }));
          samples.push({ start, body: r.body });
        }
      };
      const clients = [client(), client()];
      await sleep(50);
      const applied = rig.proxy.nextApply();
      const t0 = performance.now();
      await rig.routes.setRoute({ upstream: HOST, servers: [backends[next]!.addr], color: next ? 'green' : 'blue', owner });
      const result = await applied;
      const confirmed = performance.now() - t0;
      if (result !== 'reloaded') throw new Error(`cutover ${k}: proxy result ${result}`);
      await sleep(300);
      stop = true;
      await Promise.all(clients);
      if (samples.some((s) => s.body !== oldBody && s.body !== newBody)) throw new Error(`cutover ${k}: a request failed`);
      const after = samples.filter((s) => s.start >= t0);
      const first = after.find((s) => s.body === newBody);
      const lastOld = [...samples].reverse().find((s) => s.body === oldBody);
      const onlyFrom = samples.find((s) => s.start > (lastOld?.start ?? t0) && s.body === newBody);
      if (!first || !onlyFrom) throw new Error(`cutover ${k}: green never answered`);
      rows.push({ firstGreen: first.start - t0, onlyGreen: Math.max(0, onlyFrom.start - t0), confirmed });
      cur = next;
      await sleep(200);
    }
  } finally {
    await rig.stop();
    await stopBackend(v1);
    await stopBackend(v2);
  }
  const col = (k: keyof (typeof rows)[number]) => rows.map((r) => r[k]);
  return {
    coalesceMs,
    cutovers: rows.length,
    onlyGreenMs: { median: r1(pct(col('onlyGreen'), 50)), p99: r1(pct(col('onlyGreen'), 99)), max: r1(Math.max(...col('onlyGreen'))) },
    firstGreenMs: { median: r1(pct(col('firstGreen'), 50)), p99: r1(pct(col('firstGreen'), 99)) },
    confirmedMs: { median: r1(pct(col('confirmed'), 50)), p99: r1(pct(col('confirmed'), 99)) },
    samplesMs: rows.map((r) => r1(r.onlyGreen)),
  };
}

const results = [];
for (const c of [300, 50]) results.push(await runSetting(c));
const report = {
  bench: 'cutover-latency',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version },
  parts: 'real etcd 3.4 + real nginx + berth proxy (in-process) + loopback node backends; no Swarm',
  results,
};
mkdirSync(OUT, { recursive: true });
writeFileSync(`${OUT}/cutover-latency.json`, JSON.stringify(report, null, 2) + '\n');
const md = [
  '# Cutover latency (setRoute → nginx serves only the new colour)',
  '',
  `${report.date}, ${report.machine.cpus} CPUs (${report.machine.model}), Node ${report.machine.node}.`,
  `Parts: ${report.parts}. ${CUTOVERS} cutovers per setting. Times in ms from just before setRoute.`,
  '',
  '| --coalesce | only new colour: median | p99 | max | first new answer: median | proxy confirmed reload: median | p99 |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...results.map(
    (r) => `| ${r.coalesceMs}ms | ${r.onlyGreenMs.median} | ${r.onlyGreenMs.p99} | ${r.onlyGreenMs.max} | ${r.firstGreenMs.median} | ${r.confirmedMs.median} | ${r.confirmedMs.p99} |`,
  ),
  '',
  'Coalescing is on the leading edge: a lone cutover applies at once, whatever the window, so both settings measure the same',
  'path: etcd watch delivery, render, `nginx -t`, SIGHUP to the master, and the old workers closing their listeners, which',
  'nginx itself starts only 100 ms after the new workers (`ngx_msleep(100)` in its master cycle): the floor of any graceful',
  'reload. Before leading-edge coalescing (2026-11-24, same machine class): 300ms p50 542.9 / p99 734.5, 50ms p50 294.4 / p99 355.9.',
  'Rerun: `npx tsx bench/cutover-latency.ts` (see bench/README.md).',
  '',
].join('\n');
writeFileSync(`${OUT}/cutover-latency.md`, md);
process.stdout.write(md);
