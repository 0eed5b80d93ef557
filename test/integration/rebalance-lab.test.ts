/**
 * Growing an environment spreads its tasks onto the new nodes (DESIGN.md round 2, "Growing
 * spreads"), on the real lab: berth controller and berth proxy as child processes, the lab's
 * nginx in front, load through it on two routes. Names are `rbl-`; the group selects pool=lab.
 * Run under `flock /tmp/berth-lab-tests.lock`.
 *
 * One environment, three services of 6 replicas: `web` (rolling), `bg` (blue-green) and
 * `pinned` (rolling, `placement.rebalance: false`); and `sick` (rolling, 4 replicas), whose
 * healthcheck fails on the node the environment will grow onto (Swarm expands `{{.Node.Hostname}}`
 * in its environment).
 *   2 nodes (3 + 3 each, sick 2 + 2) → 3 nodes: web and bg reach 2 + 2 + 2 within 60 s with no
 *   failed request through nginx; pinned keeps 3 + 3 + 0; berth_rebalances_total counts two balanced.
 *   sick's move never becomes healthy: after its progressDeadline it is Unbalanced (counted once),
 *   keeps its extra task until Swarm gives up on that node and runs it elsewhere, then is back at
 *   2 + 2 + 0 with never fewer than 4 healthy tasks, and is not tried again.
 *   → back to 2 nodes: every service 3 + 3, no failed request; Unbalanced is gone.
 * Prints the measured times.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Environment } from '../../src/api/index.js';
import { parseResource } from '../../src/api/resource.js';
import { BlueGreenLab, Load } from '../support/bluegreen-lab.js';
import { metricTotal, scrapeMetrics } from '../support/prom-text.js';

const REPLICAS = 6;

class RebalanceLab extends BlueGreenLab {
  /** The environment on `nodes` nodes; with `sickOn`, also `sick`, never healthy on that node. */
  spec(nodes: number, sickOn?: string): Environment {
    const service = (extra: Record<string, unknown>) => ({
      image: this.lab.image('v1'),
      replicas: REPLICAS,
      ports: [{ target: 8080 }],
      healthcheck: { test: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/healthz'], interval: '1s', timeout: '1s', retries: 3 },
      ...extra,
    });
    return parseResource({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Environment',
      metadata: { name: this.env },
      spec: {
        group: this.group,
        nodes,
        services: {
          web: service({}),
          bg: service({ strategy: { type: 'blueGreen', drain: '2s', progressDeadline: '60s' } }),
          pinned: service({ placement: { rebalance: false } }),
          ...(sickOn
            ? {
                sick: service({
                  replicas: 4,
                  ports: [],
                  environment: { NODE: '{{.Node.Hostname}}' },
                  healthcheck: { test: ['CMD-SHELL', `test "$NODE" != "${sickOn}" && wget -q -O /dev/null http://127.0.0.1:8080/healthz`], interval: '1s', timeout: '1s', retries: 2 },
                  strategy: { progressDeadline: '10s' },
                }),
              }
            : {}),
        },
      },
    }) as Environment;
  }

  async resize(nodes: number): Promise<void> {
    await this.store.apply(this.spec(nodes, this.sickOn));
  }

  sickOn: string | undefined;

  /** The pool node the environment does not hold yet: where it grows to. */
  async freeNode(): Promise<string> {
    const nodes = await this.docker.listNodes();
    return nodes.find((n) => n.Spec?.Labels?.pool === 'lab' && !n.Spec?.Labels?.['berth.env'])!.Description!.Hostname!;
  }

  /** Tasks of a service that run (and so passed their healthcheck). */
  async runningOf(swarmService: string): Promise<number> {
    const filters = { service: [swarmService], 'desired-state': ['running'] };
    const tasks = (await this.docker.listTasks({ filters } as never)) as unknown as Array<{ Status?: { State?: string } }>;
    return tasks.filter((t) => t.Status?.State === 'running').length;
  }

  /** The replica count Swarm holds for a service. */
  async replicasOf(swarmService: string): Promise<number | undefined> {
    const list = (await this.docker.listServices({ filters: { name: [swarmService] } } as never)) as unknown as Array<{ Spec: { Name: string; Mode: { Replicated?: { Replicas: number } } } }>;
    return list.find((x) => x.Spec.Name === swarmService)?.Spec.Mode.Replicated?.Replicas;
  }

  /**
   * Running tasks of a Swarm service on each node the environment holds (0 included), sorted
   * high to low, or undefined while any of its tasks is not yet running or not on a held node.
   */
  async spread(swarmService: string): Promise<number[] | undefined> {
    const held = (await this.docker.listNodes()).filter((n) => n.Spec?.Labels?.['berth.env'] === this.env).map((n) => n.ID);
    const filters = { service: [swarmService], 'desired-state': ['running'] };
    const tasks = (await this.docker.listTasks({ filters } as never)) as unknown as Array<{ NodeID: string; Status?: { State?: string } }>;
    if (tasks.some((t) => t.Status?.State !== 'running' || !held.includes(t.NodeID))) return undefined;
    return held.map((id) => tasks.filter((t) => t.NodeID === id).length).sort((a, b) => b - a);
  }

  /** Every service's spread, once each equals `want` (within `timeoutMs`). */
  async spreadAll(want: Record<string, number[]>, timeoutMs: number): Promise<void> {
    await this.until(
      `spread ${JSON.stringify(want)}`,
      async () => {
        for (const [svc, counts] of Object.entries(want)) if (JSON.stringify(await this.spread(svc)) !== JSON.stringify(counts)) return false;
        return true;
      },
      timeoutMs,
      500,
    );
  }
}

const lab = new RebalanceLab('rbl-1', 'rbl-g', 2);
const webLoad = lab.load('rbl-1-web');
const bgLoad = lab.load('rbl-1-bg');
const measured: Record<string, unknown> = {};
const failures = (load: Load, from: number) => load.failures(from).length;
let liveBg = 'rbl-1_bg_blue';

/** The fewest running tasks of a service seen while it runs, sampled every 250 ms. */
class LowWater {
  min = Infinity;
  private running = true;
  private readonly done: Promise<void>;
  constructor(service: string) {
    this.done = (async () => {
      while (this.running) {
        this.min = Math.min(this.min, await lab.runningOf(service));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
  }
  async stop(): Promise<number> {
    this.running = false;
    await this.done;
    return this.min;
  }
}
let sickLow: LowWater | undefined;

lab.hooks(webLoad, () => {
  void bgLoad.stop();
  return `rebalance: web ${webLoad.answers.length} requests (${webLoad.failures().length} failed), bg ${bgLoad.answers.length} (${bgLoad.failures().length} failed); ${JSON.stringify(measured)}; logs: ${lab.log}`;
});

test('2 → 3 nodes: web and the live blue-green colour reach 2 + 2 + 2 within 60 s with no failed request; pinned keeps 3 + 3 + 0', async () => {
  await lab.resize(2);
  await lab.until('Ready on 2 nodes', async () => (await lab.status())?.phase === 'Ready', 120_000, 500);
  liveBg = `rbl-1_bg_${(await lab.status())!.services.bg!.activeColor}`;
  await lab.spreadAll({ 'rbl-1_web': [3, 3], [liveBg]: [3, 3], 'rbl-1_pinned': [3, 3] }, 30_000);
  lab.sickOn = await lab.freeNode();
  await lab.resize(2);
  await lab.spreadAll({ 'rbl-1_sick': [2, 2] }, 30_000);
  await lab.until('both routes serve', async () => (await lab.get(3_000, 'rbl-1-web')).status === 200 && (await lab.get(3_000, 'rbl-1-bg')).status === 200, 30_000);
  webLoad.start(25);
  bgLoad.start(25);

  const from = Date.now();
  sickLow = new LowWater('rbl-1_sick');
  await lab.resize(3);
  await lab.spreadAll({ 'rbl-1_web': [2, 2, 2], [liveBg]: [2, 2, 2] }, 60_000);
  measured.growSpreadSeconds = (Date.now() - from) / 1000;
  await lab.until('Ready on 3 nodes', async () => (await lab.status())?.phase === 'Ready', 30_000, 500);
  measured.growReadySeconds = (Date.now() - from) / 1000;

  assert.deepEqual(await lab.spread('rbl-1_pinned'), [3, 3, 0], 'rebalance: false: never moved');
  const st = (await lab.status())!;
  assert.equal(st.services.bg!.activeColor, liveBg.split('_').at(-1), 'the blue-green service was spread in its live colour, not released');
  assert.equal(st.services.bg!.cutovers?.length, 1, 'no cutover');
  assert.deepEqual(Object.values(st.services.web!.tasksPerNode ?? {}), [2, 2, 2], 'status shows the tasks per node');
  assert.equal(st.services.web!.rebalance, undefined, 'no rebalance left in status');
  assert.equal(st.services.bg!.rebalance, undefined);
  const metrics = await scrapeMetrics(lab.metricsUrls.controller!);
  assert.equal(metricTotal(metrics, 'berth_rebalances_total', 'result="balanced"'), 2, 'web and bg');
  assert.equal(metricTotal(metrics, 'berth_rebalances_total', 'service="pinned"'), 0);

  measured.growFailed = { web: failures(webLoad, from), bg: failures(bgLoad, from) };
  assert.deepEqual(webLoad.failures(from).slice(0, 5), [], 'web: no failed request');
  assert.deepEqual(bgLoad.failures(from).slice(0, 5), [], 'bg: no failed request');
});

test('a move whose new task is never healthy stops after progressDeadline: Unbalanced, back to 2 + 2 + 0 without losing a healthy task, not tried again', async () => {
  const stuck = async () => (await lab.status())?.services.sick?.rebalance?.state === 'Unbalanced';
  await lab.until('sick is Unbalanced', stuck, 45_000, 500);
  const from = Date.now();
  await lab.until('sick back at 4 replicas, 2 + 2 + 0', async () => (await lab.replicasOf('rbl-1_sick')) === 4 && JSON.stringify(await lab.spread('rbl-1_sick')) === '[2,2,0]', 90_000, 500);
  measured.failedMoveBackSeconds = (Date.now() - from) / 1000;
  assert.equal(await sickLow!.stop(), 4, 'never fewer healthy tasks than before the move');
  const st = (await lab.status())!;
  const condition = st.conditions.find((c) => c.type === 'Unbalanced');
  assert.equal(condition?.reason, 'RebalanceStuck');
  assert.match(condition!.message, /sick: the extra task was not running and healthy within 10s/);
  assert.equal(st.phase, 'Ready', 'every replica runs: Unbalanced is reported, the environment is not degraded');
  // No loop: for the same nodes and spec it stays as it is.
  for (let i = 0; i < 8; i++) {
    assert.equal(await lab.replicasOf('rbl-1_sick'), 4, 'no further surge');
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const metrics = await scrapeMetrics(lab.metricsUrls.controller!);
  assert.equal(metricTotal(metrics, 'berth_rebalances_total', 'service="sick",result="unbalanced"'), 1);
  assert.equal(metricTotal(metrics, 'berth_rebalances_total', 'service="sick",result="balanced"'), 0);
});

test('3 → 2 nodes: every service back to 3 + 3 with no failed request', async () => {
  const from = Date.now();
  await lab.resize(2);
  await lab.spreadAll({ 'rbl-1_web': [3, 3], [liveBg]: [3, 3], 'rbl-1_pinned': [3, 3], 'rbl-1_sick': [2, 2] }, 60_000);
  measured.shrinkSpreadSeconds = (Date.now() - from) / 1000;
  await lab.until('Ready on 2 nodes, balanced', async () => (await lab.status())?.phase === 'Ready' && !(await lab.status())?.conditions.some((c) => c.type === 'Unbalanced'), 30_000, 500);
  // The released node's tasks were stopped: give nginx the time to have noticed any failure.
  await new Promise((r) => setTimeout(r, 2_000));
  await webLoad.stop();
  await bgLoad.stop();
  measured.shrinkFailed = { web: failures(webLoad, from), bg: failures(bgLoad, from) };
  assert.deepEqual(webLoad.failures(from).slice(0, 5), [], 'web: no failed request');
  assert.deepEqual(bgLoad.failures(from).slice(0, 5), [], 'bg: no failed request');
});
