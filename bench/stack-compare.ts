/**
 * berth side by side with `docker stack deploy`, on the lab, for the same five services:
 *   cold      from the command (stack deploy / berth apply) until every service runs its replicas
 *   change    one service's image changed (v1 → v2), until that service runs only the new image
 * "Runs" is read from the Swarm the same way for both (tasks desired and in state running, with
 * the expected image), polled every 100 ms on the manager; berth's own Ready is reported beside it.
 * berth runs as `berth controller` (dist/) beside the bench; the group and the controller are up
 * and idle before the clock starts. Both use rolling updates, start-first for berth (its default),
 * Swarm's default (stop-first) for the stack, as a stack file written without tuning would.
 *
 * Needs the lab up and its variables: eval "$(node bin/berth.js lab env)"; needs `npm run build`.
 * Run: npx tsx bench/stack-compare.ts [--rounds 3] [--out bench/results]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireLab } from '../test/support/lab.js';

const run = promisify(execFile);
const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const ROUNDS = Number(arg('rounds', '3'));
const OUT = arg('out', 'bench/results');
const SERVICES = ['a', 'b', 'c', 'd', 'e'];
const REPLICAS = 2;
const TIMEOUT_MS = 180_000;
const lab = requireLab();
const docker = lab.docker();
const work = mkdtempSync(join(tmpdir(), 'berth-stack-compare-'));
const berth = (...a: string[]) => run(process.execPath, ['bin/berth.js', ...a], { env: process.env });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stackFile(changedImage: string | undefined): string {
  const lines = ['version: "3.8"', 'services:'];
  for (const s of SERVICES) {
    const image = s === 'a' && changedImage ? changedImage : lab.image('v1');
    lines.push(
      `  ${s}:`,
      `    image: ${image}`,
      `    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]`,
      `    ports: [{ target: 8080, mode: host }]`,
      `    deploy: { replicas: ${REPLICAS}, placement: { constraints: ["node.labels.pool==lab"], max_replicas_per_node: 1 } }`,
    );
  }
  return lines.join('\n') + '\n';
}

function envFile(name: string, changedImage: string | undefined): string {
  const services = SERVICES.map((s) => {
    const image = s === 'a' && changedImage ? changedImage : lab.image('v1');
    return `    ${s}: { image: "${image}", replicas: ${REPLICAS}, ports: [{ target: 8080 }], placement: { maxPerNode: 1 } }`;
  });
  return [
    'apiVersion: berth.dev/v1alpha1',
    'kind: Environment',
    `metadata: { name: ${name} }`,
    'spec:',
    '  group: cmp-pool',
    '  nodes: 3',
    '  services:',
    ...services,
    '',
  ].join('\n');
}

/** Every named service runs REPLICAS tasks of its image, and nothing older still runs. */
async function converged(serviceNames: string[], imageOf: (name: string) => string): Promise<boolean> {
  const tasks = (await docker.listTasks({ filters: { 'desired-state': ['running'] } })) as Array<{
    ServiceID: string;
    Status?: { State?: string };
    Spec?: { ContainerSpec?: { Image?: string } };
  }>;
  const services = (await docker.listServices()) as Array<{ ID: string; Spec?: { Name?: string } }>;
  for (const name of serviceNames) {
    const svc = services.find((s) => s.Spec?.Name === name);
    if (!svc) return false;
    const mine = tasks.filter((t) => t.ServiceID === svc.ID);
    const good = mine.filter((t) => t.Status?.State === 'running' && (t.Spec?.ContainerSpec?.Image ?? '').startsWith(imageOf(name)));
    if (good.length !== REPLICAS || mine.length !== REPLICAS) return false;
  }
  return true;
}

async function timeUntil(cond: () => Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < TIMEOUT_MS) {
    if (await cond()) return performance.now() - t0;
    await sleep(100);
  }
  throw new Error('not converged within the timeout');
}

async function gone(prefix: string): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < TIMEOUT_MS) {
    const services = (await docker.listServices()) as Array<{ Spec?: { Name?: string } }>;
    const tasks = (await docker.listTasks({ filters: { 'desired-state': ['running'] } })) as unknown[];
    if (!services.some((s) => s.Spec?.Name?.startsWith(prefix)) && tasks.length === 0) return;
    await sleep(200);
  }
  throw new Error(`${prefix} services still present`);
}

async function stackRound(round: number) {
  const name = `cmpstack${round}`;
  const names = SERVICES.map((s) => `${name}_${s}`);
  const file = join(work, `${name}.yml`);
  const deploy = (changed?: string) => {
    writeFileSync(file, stackFile(changed));
    return run('docker', ['stack', 'deploy', '--resolve-image', 'never', '-c', file, name], { env: process.env });
  };
  let t0 = performance.now();
  await deploy();
  await timeUntil(() => converged(names, () => lab.image('v1')));
  const cold = performance.now() - t0;
  t0 = performance.now();
  await deploy(lab.image('v2'));
  await timeUntil(() => converged(names, (n) => (n.endsWith('_a') ? lab.image('v2') : lab.image('v1'))));
  const change = performance.now() - t0;
  // `stack rm` fails to remove the stack's network while its tasks are still stopping: once they
  // are gone, remove the network ourselves.
  await run('docker', ['stack', 'rm', name], { env: process.env }).catch(() => undefined);
  await gone(`${name}_`);
  await run('docker', ['network', 'rm', `${name}_default`], { env: process.env }).catch(() => undefined);
  return { cold, change };
}

async function berthRound(round: number) {
  const name = `cmpberth${round}`;
  const names = SERVICES.map((s) => `${name}_${s}`);
  const file = join(work, `${name}.yaml`);
  const apply = (changed?: string) => {
    writeFileSync(file, envFile(name, changed));
    return berth('apply', '-f', file);
  };
  const ready = async () => JSON.parse((await berth('get', 'envs', name, '-o', 'json')).stdout).status?.phase === 'Ready';
  let t0 = performance.now();
  await apply();
  await timeUntil(() => converged(names, () => lab.image('v1')));
  const cold = performance.now() - t0;
  await timeUntil(ready);
  const coldReady = performance.now() - t0;
  t0 = performance.now();
  await apply(lab.image('v2'));
  await timeUntil(() => converged(names, (n) => (n.endsWith('_a') ? lab.image('v2') : lab.image('v1'))));
  const change = performance.now() - t0;
  await berth('delete', 'env', name);
  await gone(`${name}_`);
  return { cold, coldReady, change };
}

async function main() {
  const groupFile = join(work, 'group.yaml');
  writeFileSync(groupFile, 'apiVersion: berth.dev/v1alpha1\nkind: EnvironmentGroup\nmetadata: { name: cmp-pool }\nspec: { nodeSelector: { pool: lab } }\n');
  await berth('apply', '-f', groupFile);
  const controller: ChildProcess = spawn(process.execPath, ['bin/berth.js', 'controller', '--metrics-addr', '127.0.0.1:19599'], {
    env: process.env,
    stdio: 'ignore',
  });
  const rounds: Array<{ stack: { cold: number; change: number }; berth: { cold: number; coldReady: number; change: number } }> = [];
  try {
    await sleep(2_000);
    for (let r = 1; r <= ROUNDS; r++) {
      const stack = await stackRound(r);
      const b = await berthRound(r);
      rounds.push({ stack, berth: b });
      console.log(`round ${r}: stack cold ${ms(stack.cold)} change ${ms(stack.change)} | berth cold ${ms(b.cold)} (Ready ${ms(b.coldReady)}) change ${ms(b.change)}`);
    }
  } finally {
    controller.kill('SIGTERM');
    await berth('delete', 'group', 'cmp-pool', '--force').catch(() => undefined);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const summary = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`,
    services: SERVICES.length,
    replicas: REPLICAS,
    rounds,
    median: {
      stackColdMs: median(rounds.map((r) => r.stack.cold)),
      berthColdMs: median(rounds.map((r) => r.berth.cold)),
      berthColdReadyMs: median(rounds.map((r) => r.berth.coldReady)),
      stackChangeMs: median(rounds.map((r) => r.stack.change)),
      berthChangeMs: median(rounds.map((r) => r.berth.change)),
    },
  };
  const m = summary.median;
  const md = [
    '# berth vs docker stack deploy (lab, 5 services × 2 replicas, 3 nodes)',
    '',
    `${summary.date}, ${summary.machine}, ${ROUNDS} rounds, medians. Ratio = berth / stack (below 1: berth faster).`,
    '',
    '| step | docker stack deploy | berth | ratio |',
    '| --- | --- | --- | --- |',
    `| cold: command → all tasks running | ${ms(m.stackColdMs)} | ${ms(m.berthColdMs)} (Ready in status ${ms(m.berthColdReadyMs)}) | ${(m.berthColdMs / m.stackColdMs).toFixed(2)} |`,
    `| one image changed → that service runs only the new image | ${ms(m.stackChangeMs)} | ${ms(m.berthChangeMs)} | ${(m.berthChangeMs / m.stackChangeMs).toFixed(2)} |`,
    '',
    'Rerun: `eval "$(node bin/berth.js lab env)" && npm run build && npx tsx bench/stack-compare.ts`',
    '',
  ].join('\n');
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, 'stack-compare.json'), JSON.stringify(summary, null, 2) + '\n');
  writeFileSync(join(OUT, 'stack-compare.md'), md);
  console.log(md);
}

const ms = (x: number) => `${(x / 1000).toFixed(2)} s`;

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
