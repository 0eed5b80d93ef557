/**
 * The controller at a scale the lab cannot reach: `berth controller` (dist/) against `berth sim`
 * (a Swarm Engine API simulator on a unix socket) and a private etcd.
 *
 *   cold      from the start of `berth apply` of ENVS environments (SERVICES services of 2
 *             replicas, 3 nodes each) until every one is Ready in berth's status
 *   idle      IDLE seconds with nothing changing: controller CPU %, RSS, Docker calls per minute
 *             (berth_docker_api_requests_total, scraped from the controller)
 *   reaction  an etcd put of one environment's spec (a replica change) → the first Docker
 *             mutation it causes (the simulator's service update event), REACTIONS times
 *
 * Run (etcd installed; no lab needed):
 *   npm run build && npx tsx bench/controller-scale.ts [--envs 1000] [--nodes 3000] [--idle 300]
 *     [--reactions 50] [--latency-ms 2] [--workers 16] [--resync 30s] [--relist 10m] [--out bench/results]
 * Results: bench/results/controller-scale-<envs>.{json,md}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { TestEtcd } from '../test/support/etcd.js';
import { metricTotal, scrapeMetrics } from '../test/support/prom-text.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const ENVS = Number(arg('envs', '1000'));
const NODES = Number(arg('nodes', '3000'));
const SERVICES = Number(arg('services', '5'));
const IDLE_S = Number(arg('idle', '300'));
const REACTIONS = Number(arg('reactions', '50'));
const LATENCY_MS = arg('latency-ms', '2');
const WORKERS = arg('workers', '16');
const RESYNC = arg('resync', '30s');
const RELIST = arg('relist', '10m');
const OUT = arg('out', 'bench/results');
/** Shifts the private etcd's and the controller's ports, so that two runs can go side by side. */
const PORT_OFFSET = Number(arg('port-offset', '0'));
const METRICS_PORT = 19611 + PORT_OFFSET;
const PREFIX = '/berth-scale';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), 'berth-scale-'));
const socket = join(work, 'sim.sock');

function berthChild(argv: string[], env: NodeJS.ProcessEnv, log: string): ChildProcess {
  const out = openSync(log, 'a');
  // BERTH_BENCH_PROF=1: a V8 CPU profile of each child, written into the kept work dir.
  const prof = process.env.BERTH_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', work] : [];
  // BERTH_BENCH_NODE_FLAGS: more flags for node in each child (e.g. --trace-gc, heap sizes).
  const flags = process.env.BERTH_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  return spawn(process.execPath, [...prof, ...flags, 'bin/berth.js', ...argv], { env, stdio: ['ignore', out, out] });
}

function envDocs(): string {
  const docs = [
    `apiVersion: berth.dev/v1alpha1\nkind: EnvironmentGroup\nmetadata: { name: scale-pool }\nspec: { nodeSelector: { pool: scale } }\n`,
  ];
  for (let e = 1; e <= ENVS; e++) {
    const services = Array.from({ length: SERVICES }, (_, s) => `    s${s + 1}: { image: "registry.sim:5000/web:v1", replicas: 2, ports: [{ target: 8080 }], placement: { maxPerNode: 1 } }`);
    docs.push([`apiVersion: berth.dev/v1alpha1`, `kind: Environment`, `metadata: { name: env-${e} }`, `spec:`, `  group: scale-pool`, `  nodes: 3`, `  services:`, ...services, ''].join('\n'));
  }
  return docs.join('---\n');
}

const scrape = () => scrapeMetrics(`http://127.0.0.1:${METRICS_PORT}/metrics`);
const sum = (m: Map<string, number>, name: string) => metricTotal(m, name);

function procStat(pid: number): { cpuTicks: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { cpuTicks, rssBytes: rssPages * 4096 };
}

/**
 * Follows the environments' statuses with an etcd watch and counts the Ready ones: polling
 * every status would load etcd and the CPU the controller is measured on.
 */
async function followReady(etcd: TestEtcd): Promise<{ count: () => number; close: () => Promise<void> }> {
  const client = etcd.client(PREFIX);
  const phases = new Map<string, string | undefined>();
  const prefix = `${PREFIX}/status/environments/`;
  const watcher = await client.etcd.watch().prefix(prefix).create();
  watcher.on('put', (kv) => phases.set(kv.key.toString(), (JSON.parse(kv.value.toString()) as { phase?: string }).phase));
  watcher.on('delete', (kv) => phases.delete(kv.key.toString()));
  for (const [k, v] of Object.entries(await client.etcd.getAll().prefix(prefix).strings())) if (!phases.has(k)) phases.set(k, (JSON.parse(v) as { phase?: string }).phase);
  return {
    count: () => [...phases.values()].filter((p) => p === 'Ready').length,
    close: async () => {
      await watcher.cancel();
      client.close();
    },
  };
}

/** etcd's own count of the gRPC requests it handled, by method (every client's: the controller's, `berth apply`'s, the bench's watch). */
async function etcdRequests(etcd: TestEtcd): Promise<Map<string, number>> {
  const byMethod = new Map<string, number>();
  for (const [series, n] of await scrapeMetrics(`${etcd.endpoint}/metrics`)) {
    const method = /^grpc_server_handled_total\{.*grpc_method="([^"]+)"/.exec(series)?.[1];
    if (method) byMethod.set(method, (byMethod.get(method) ?? 0) + n);
  }
  return byMethod;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

/** Per reaction: put → first Docker mutation, and how long the put itself took (etcd's commit, fsync included: the floor under the first). */
async function reactions(etcd: TestEtcd, docker: Docker, count: number): Promise<{ reactMs: number[]; putMs: number[] }> {
  const client = etcd.client(PREFIX);
  const events = (await docker.getEvents({ filters: { type: ['service'], event: ['update'] } } as Docker.GetEventsOptions)) as NodeJS.ReadableStream;
  const updates: { name: string; at: number }[] = [];
  let buffered = '';
  events.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim()) updates.push({ name: (JSON.parse(line) as { Actor: { Attributes: { name: string } } }).Actor.Attributes.name, at: performance.now() });
    }
  });
  const out: number[] = [];
  const puts: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const env = `env-${1 + ((i * 7) % ENVS)}`;
      const key = `${PREFIX}/environments/${env}`;
      const stored = JSON.parse((await client.etcd.get(key).string())!) as { spec: { services: Record<string, { replicas: number }> }; metadata: { generation?: number } };
      stored.spec.services.s1!.replicas = stored.spec.services.s1!.replicas === 2 ? 3 : 2;
      stored.metadata.generation = (stored.metadata.generation ?? 1) + 1;
      const target = `${env}_s1`;
      const t0 = performance.now();
      await client.etcd.put(key).value(JSON.stringify(stored));
      puts.push(performance.now() - t0);
      for (let w = 0; w < 2_000 && !updates.some((u) => u.name === target && u.at >= t0); w++) await sleep(1);
      const hit = updates.find((u) => u.name === target && u.at >= t0);
      if (!hit) throw new Error(`no Docker update of ${target} within 2 s`);
      out.push(hit.at - t0);
      await sleep(300);
    }
  } finally {
    (events as unknown as { destroy(): void }).destroy();
    client.close();
  }
  return { reactMs: out, putMs: puts };
}

async function main() {
  const etcd = new TestEtcd({ clientPort: 23795 + PORT_OFFSET, peerPort: 23805 + PORT_OFFSET });
  await etcd.start();
  const children: ChildProcess[] = [];
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}`, BERTH_ETCD_ENDPOINTS: etcd.endpoint, BERTH_PREFIX: PREFIX };
  try {
    const sim = berthChild(['sim', '--socket', socket, '--nodes', String(NODES), '--node-labels', 'pool=scale', '--latency-ms', LATENCY_MS], env, join(work, 'sim.log'));
    children.push(sim);
    const docker = new Docker({ socketPath: socket });
    for (let i = 0; i < 200; i++) {
      try {
        await docker.ping();
        break;
      } catch {
        await sleep(100);
      }
    }
    const controller = berthChild(['controller', '--no-resolve-digests', '--metrics-addr', `127.0.0.1:${METRICS_PORT}`, '--workers', WORKERS, '--resync', RESYNC, '--relist', RELIST], env, join(work, 'controller.log'));
    children.push(controller);
    for (let i = 0; i < 200; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${METRICS_PORT}/readyz`)).ok) break;
      } catch {
        /* starting */
      }
      await sleep(100);
    }
    const file = join(work, 'envs.yaml');
    writeFileSync(file, envDocs());
    const before = sum(await scrape(), 'berth_docker_api_requests_total');
    const etcdBefore = await etcdRequests(etcd);
    const ready = await followReady(etcd);
    // CPU seconds each process spent on the cold start: on a shared machine the wall time also
    // counts the others' load, the CPU time much less.
    const cpuBefore = { controller: procStat(controller.pid!).cpuTicks, sim: procStat(sim.pid!).cpuTicks };
    const t0 = performance.now();
    const apply = spawn(process.execPath, ['bin/berth.js', 'apply', '-f', file], { env, stdio: 'ignore' });
    const applyDone = new Promise<number>((r) => apply.once('exit', () => r(performance.now() - t0)));
    while (ready.count() < ENVS) {
      if (performance.now() - t0 > 600_000) throw new Error(`only ${ready.count()}/${ENVS} Ready after 10 min`);
      await sleep(50);
    }
    const coldMs = performance.now() - t0;
    const coldCpuS = {
      controller: (procStat(controller.pid!).cpuTicks - cpuBefore.controller) / 100,
      sim: (procStat(sim.pid!).cpuTicks - cpuBefore.sim) / 100,
    };
    await ready.close();
    const applyMs = await applyDone;
    const afterCold = await scrape();
    const coldCalls = sum(afterCold, 'berth_docker_api_requests_total') - before;
    const coldCallsByOperation = Object.fromEntries([...afterCold].filter(([k]) => k.startsWith('berth_docker_api_requests_total{')).map(([k, v]) => [k.replace(/.*operation="([^"]+)".*/, '$1'), v]));
    const coldReconciles = Object.fromEntries([...afterCold].filter(([k]) => k.startsWith('berth_reconciles_total{')).map(([k, v]) => [k.replace(/^[^{]+/, ''), v]));
    const coldRetries = sum(afterCold, 'berth_workqueue_retries_total');
    const etcdAfter = await etcdRequests(etcd);
    const coldEtcdRequests = Object.fromEntries([...etcdAfter].map(([method, n]) => [method, n - (etcdBefore.get(method) ?? 0)]).filter(([, n]) => n !== 0));
    console.log({ coldCallsByOperation, coldReconciles, coldRetries });
    console.log(`cold: ${ENVS} envs Ready in ${(coldMs / 1000).toFixed(1)} s (apply ${(applyMs / 1000).toFixed(1)} s), ${coldCalls} Docker calls; CPU: controller ${coldCpuS.controller.toFixed(1)} s, simulator ${coldCpuS.sim.toFixed(1)} s; load average ${loadavg()[0]!.toFixed(1)}`);

    await sleep(5_000);
    const startScrape = await scrape();
    const idleStart = { stat: procStat(controller.pid!), calls: sum(startScrape, 'berth_docker_api_requests_total'), reconciles: sum(startScrape, 'berth_reconciles_total'), at: performance.now() };
    let peakRss = idleStart.stat.rssBytes;
    for (let s = 0; s < IDLE_S; s += 5) {
      await sleep(5_000);
      peakRss = Math.max(peakRss, procStat(controller.pid!).rssBytes);
    }
    const endScrape = await scrape();
    const idleEnd = { stat: procStat(controller.pid!), calls: sum(endScrape, 'berth_docker_api_requests_total'), reconciles: sum(endScrape, 'berth_reconciles_total'), at: performance.now() };
    const idleReconciles = idleEnd.reconciles - idleStart.reconciles;
    const idleSeconds = (idleEnd.at - idleStart.at) / 1000;
    const ticksPerSecond = 100;
    const idleCpuPct = ((idleEnd.stat.cpuTicks - idleStart.stat.cpuTicks) / ticksPerSecond / idleSeconds) * 100;
    const idleCallsPerMin = ((idleEnd.calls - idleStart.calls) / idleSeconds) * 60;
    console.log(`idle ${idleSeconds.toFixed(0)} s: CPU ${idleCpuPct.toFixed(2)} %, RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB, ${idleCallsPerMin.toFixed(1)} Docker calls/min, ${idleReconciles} reconciles`);

    const { reactMs: react, putMs: put } = REACTIONS > 0 ? await reactions(etcd, docker, REACTIONS) : { reactMs: [], putMs: [] };
    if (react.length) console.log(`reaction: slowest ${[...react].sort((a, b) => b - a).slice(0, 5).map((x) => x.toFixed(1)).join(', ')} ms`);
    if (react.length) console.log(`reaction: p50 ${pct(react, 50).toFixed(1)} ms, p99 ${pct(react, 99).toFixed(1)} ms (the put itself: p50 ${pct(put, 50).toFixed(1)}, p99 ${pct(put, 99).toFixed(1)} ms)`);

    const result = {
      date: new Date().toISOString(),
      machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`,
      envs: ENVS,
      nodes: NODES,
      servicesPerEnv: SERVICES,
      simLatencyMs: Number(LATENCY_MS),
      workers: Number(WORKERS),
      resync: RESYNC,
      relist: RELIST,
      cold: { readyMs: Math.round(coldMs), applyMs: Math.round(applyMs), cpuSeconds: coldCpuS, loadAverage: Number(loadavg()[0]!.toFixed(2)), dockerCalls: coldCalls, dockerCallsByOperation: coldCallsByOperation, etcdRequestsByMethod: coldEtcdRequests, reconciles: coldReconciles, retries: coldRetries },
      idle: { seconds: Math.round(idleSeconds), cpuPct: Number(idleCpuPct.toFixed(2)), peakRssMiB: Math.round(peakRss / 2 ** 20), dockerCallsPerMin: Number(idleCallsPerMin.toFixed(2)), reconciles: idleReconciles },
      reaction: react.length
        ? { samples: react.length, p50Ms: Number(pct(react, 50).toFixed(1)), p99Ms: Number(pct(react, 99).toFixed(1)), putP50Ms: Number(pct(put, 50).toFixed(1)), putP99Ms: Number(pct(put, 99).toFixed(1)) }
        : undefined,
    };
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, `controller-scale-${ENVS}.json`), JSON.stringify(result, null, 2) + '\n');
    console.log(JSON.stringify(result, null, 2));
  } finally {
    for (const c of children.reverse()) {
      c.kill('SIGTERM');
      await new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)));
    }
    await etcd.destroy();
    if (process.env.BERTH_BENCH_KEEP) console.log(`logs kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
