/**
 * Scale simulator for the controller's planning: how long one full resync takes (every
 * environment planned against one Swarm snapshot) and how much memory the snapshot and plans
 * take, for Swarms far larger than the lab. Pure planning on generated data: no Docker, no etcd.
 * A converged world must plan zero actions; the run fails if it does not, so the timing is of
 * real, correct work.
 *
 *   node --expose-gc --import tsx bench/planner-scale.ts   # writes bench/results/planner-scale.{json,md}
 *   node --expose-gc --import tsx bench/planner-scale.ts --rounds 3 --out /tmp/bench
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseResource, type Environment, type EnvironmentGroup } from '../src/api/index.js';
import { planEnvironment } from '../src/reconcile/planner/index.js';
import { LABEL_ENV, LABEL_INSTALLATION } from '../src/swarm/labels.js';
import type { ObservedNode, ObservedService, ObservedTask, SwarmSnapshot } from '../src/swarm/model.js';
import { NodeTable } from '../src/swarm/node-index.js';

/** The installation the simulated world belongs to: a converged world is already labelled for it. */
const OWN = { installation: 'bench', adoptUnlabelled: true };
import { buildServiceSpec } from '../src/swarm/service-spec.js';

interface Scenario { nodes: number; envs: number; nodesPerEnv: number; servicesPerEnv: number; replicas: number }

const SCENARIOS: Scenario[] = [
  { nodes: 30, envs: 10, nodesPerEnv: 2, servicesPerEnv: 3, replicas: 2 },
  { nodes: 300, envs: 100, nodesPerEnv: 2, servicesPerEnv: 5, replicas: 2 },
  { nodes: 2000, envs: 600, nodesPerEnv: 3, servicesPerEnv: 5, replicas: 3 },
];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const group = parseResource({
  apiVersion: 'berth.dev/v1alpha1',
  kind: 'EnvironmentGroup',
  metadata: { name: 'pool' },
  spec: { nodeSelector: { pool: 'sim' } },
}) as EnvironmentGroup;

function environment(i: number, s: Scenario): Environment {
  const services: Record<string, unknown> = {};
  for (let k = 0; k < s.servicesPerEnv; k++) {
    services[`svc${k}`] = {
      image: `10.77.0.1:5000/app${k}:v1`,
      replicas: s.replicas,
      ports: [{ target: 8080 }],
      placement: { maxPerNode: 1, spreadBy: 'node.labels.zone' },
    };
  }
  return parseResource({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: `env-${i}`, generation: 1 },
    spec: { group: 'pool', nodes: s.nodesPerEnv, services },
  }) as Environment;
}

/** A Swarm in which every environment already holds its nodes and runs its services. */
function convergedWorld(s: Scenario, envs: Environment[]): SwarmSnapshot {
  const nodes: ObservedNode[] = [];
  for (let n = 0; n < s.nodes; n++) {
    nodes.push({
      id: `node${n}`, hostname: `host-${n}`, addr: `10.0.${n >> 8}.${n & 255}`, role: n === 0 ? 'manager' : 'worker',
      state: 'ready', availability: 'active', labels: { pool: 'sim', zone: 'abc'[n % 3]! }, version: 1,
    });
  }
  const services: ObservedService[] = [];
  const tasks: ObservedTask[] = [];
  envs.forEach((env, e) => {
    const held = nodes.slice(e * s.nodesPerEnv, (e + 1) * s.nodesPerEnv);
    for (const node of held) Object.assign(node.labels, { [LABEL_ENV]: env.metadata.name, [LABEL_INSTALLATION]: OWN.installation });
    for (const [name, spec] of Object.entries(env.spec.services)) {
      const docker = buildServiceSpec(env.metadata.name, name, spec);
      const id = `${env.metadata.name}-${name}`;
      services.push({ id, name: docker.Name!, version: 1, labels: { ...docker.Labels!, [LABEL_INSTALLATION]: OWN.installation }, replicas: spec.replicas, image: spec.image, template: spec.image, createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z' });
      for (let r = 0; r < spec.replicas; r++) {
        tasks.push({ id: `${id}-${r}`, serviceId: id, nodeId: held[r % held.length]!.id, slot: r + 1, desiredState: 'running', state: 'running', template: spec.image, ports: [{ target: 8080, published: 30000 + r, protocol: 'tcp' }], message: 'started' });
      }
    }
  });
  return { nodes: NodeTable.of(nodes), services, tasks };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function run(s: Scenario, rounds: number) {
  const envs = Array.from({ length: s.envs }, (_, i) => environment(i, s));
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const snapshot = convergedWorld(s, envs);
  const heapSnapshot = process.memoryUsage().heapUsed - heapBefore;
  const resyncMs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    let actions = 0;
    for (const env of envs) actions += planEnvironment(env, group, snapshot, OWN).actions.length;
    resyncMs.push(performance.now() - t0);
    if (actions !== 0) throw new Error(`converged world planned ${actions} actions; the simulator or the planner is wrong`);
  }
  // Cold start: the same specs against a Swarm with no claims and no services.
  const empty: SwarmSnapshot = { nodes: NodeTable.of([...snapshot.nodes.values()].map((n) => ({ ...n, labels: { pool: 'sim', zone: n.labels.zone! } }))), services: [], tasks: [] };
  const t0 = performance.now();
  let coldActions = 0;
  for (const env of envs) coldActions += planEnvironment(env, group, empty, OWN).actions.length;
  const coldMs = performance.now() - t0;
  return {
    ...s,
    tasks: snapshot.tasks.length,
    resyncMedianMs: +median(resyncMs).toFixed(2),
    perEnvMedianMs: +(median(resyncMs) / s.envs).toFixed(4),
    coldPlanMs: +coldMs.toFixed(2),
    coldActions,
    snapshotHeapMiB: +(heapSnapshot / 2 ** 20).toFixed(1),
    rssMiB: +(process.memoryUsage().rss / 2 ** 20).toFixed(0),
  };
}

const rounds = Number(arg('rounds', '5'));
const out = arg('out', join(import.meta.dirname, 'results'));
const results = SCENARIOS.map((s) => run(s, rounds));
const md = [
  '# planner-scale',
  '',
  `Node ${process.version}, ${rounds} rounds, median. One full resync plans every environment against one snapshot.`,
  '',
  '| nodes | envs | services/env | tasks | full resync (ms) | per env (ms) | cold start plan (ms) | cold actions | snapshot heap (MiB) | rss (MiB) |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...results.map((r) => `| ${r.nodes} | ${r.envs} | ${r.servicesPerEnv} | ${r.tasks} | ${r.resyncMedianMs} | ${r.perEnvMedianMs} | ${r.coldPlanMs} | ${r.coldActions} | ${r.snapshotHeapMiB} | ${r.rssMiB} |`),
  '',
].join('\n');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'planner-scale.json'), JSON.stringify({ node: process.version, rounds, results }, null, 2) + '\n');
writeFileSync(join(out, 'planner-scale.md'), md);
console.log(md);
