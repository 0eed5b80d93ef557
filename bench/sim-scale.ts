/*
 * berth sim at the benchmark's size: 3,000 nodes; 1,000 environments each labelling 3 nodes and
 * running 5 services of 2 replicas (MaxReplicas 1) = 10,000 tasks. Measures the simulator's
 * resident memory, the time to converge, and what the docker CLI and dockerode take to list.
 *
 *   npx tsx bench/sim-scale.ts [--envs 1000] [--nodes 3000] [--latency-ms 3]
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import Docker from 'dockerode';

const { values } = parseArgs({ options: { envs: { type: 'string', default: '1000' }, nodes: { type: 'string', default: '3000' }, 'latency-ms': { type: 'string', default: '3' } } });
const envs = Number(values.envs);
const nodes = Number(values.nodes);
const dir = mkdtempSync(join(tmpdir(), 'berth-sim-bench-'));
const socketPath = join(dir, 'docker.sock');
const sim = spawn(process.execPath, ['bin/berth.js', 'sim', '--socket', socketPath, '--nodes', String(nodes), '--latency-ms', String(values['latency-ms'])], { stdio: ['ignore', 'ignore', 'inherit'] });
const docker = new Docker({ socketPath });
const run = promisify(execFile);
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${sim.pid}/status`, 'utf8'))![1]) / 1024;
const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const r = await fn();
  return [r, Math.round(performance.now() - t0)];
};
async function pool<T>(items: T[], width: number, fn: (x: T) => Promise<unknown>) {
  let i = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}
const cli = async (...args: string[]) => timed(() => run('docker', args, { env: { ...process.env, DOCKER_HOST: `unix://${socketPath}` }, maxBuffer: 1 << 28 }));

try {
  for (;;) {
    try { await docker.ping(); break; } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  const results: Record<string, number> = { nodes, envs, latencyMs: Number(values['latency-ms']), rssMbIdle: Math.round(rssMb()) };
  const list = await docker.listNodes();
  const [, labelMs] = await timed(() => pool(list.slice(0, envs * 3), 16, async (n, i = list.indexOf(n)) => {
    const node = docker.getNode(n.ID);
    await node.update({ _query: { version: n.Version!.Index }, _body: { ...n.Spec, Labels: { ...n.Spec!.Labels, 'berth.env': `env-${Math.floor(i / 3)}` } } } as never);
  }));
  results.labelNodesMs = labelMs;
  const specs = Array.from({ length: envs * 5 }, (_, k) => ({ env: `env-${Math.floor(k / 5)}`, svc: `s${k % 5}` }));
  const [, createMs] = await timed(() => pool(specs, 16, ({ env, svc }) => docker.createService({
    Name: `${env}_${svc}`,
    Labels: { 'berth.env': env },
    TaskTemplate: { ContainerSpec: { Image: 'web:v1', Labels: { 'berth.env': env } }, Placement: { Constraints: [`node.labels.berth.env==${env}`], MaxReplicas: 1 } },
    Mode: { Replicated: { Replicas: 2 } },
    EndpointSpec: { Ports: [{ TargetPort: 8080, PublishMode: 'host' }] },
  } as never)));
  results.createServicesMs = createMs;
  const [, convergeMs] = await timed(async () => {
    for (;;) {
      const running = (await docker.listTasks({ filters: { 'desired-state': ['running'] } })).filter((t) => t.Status?.State === 'running').length;
      if (running === envs * 10) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  results.convergeAfterCreateMs = convergeMs;
  results.tasks = (await docker.listTasks()).length;
  results.rssMbLoaded = Math.round(rssMb());
  results.dockerodeListTasksMs = (await timed(() => docker.listTasks()))[1];
  results.dockerodeListServicesMs = (await timed(() => docker.listServices()))[1];
  results.dockerodeListNodesMs = (await timed(() => docker.listNodes()))[1];
  results.dockerodeTasksOfOneEnvMs = (await timed(() => docker.listTasks({ filters: { service: specs.slice(0, 5).map((s) => `${s.env}_${s.svc}`) } })))[1];
  results.cliServiceLsMs = (await cli('service', 'ls'))[1];
  results.cliNodeLsMs = (await cli('node', 'ls'))[1];
  results.cliServicePsMs = (await cli('service', 'ps', 'env-0_s0'))[1];
  results.rssMbAfterLists = Math.round(rssMb());
  console.log(JSON.stringify(results, null, 2));
} finally {
  sim.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
