/**
 * Growing an environment spreads its tasks onto the new nodes (DESIGN.md round 2, "Growing
 * spreads"), on the real lab: berth controller and berth proxy as child processes, the lab's
 * nginx in front, load through it on two routes. Names are `rbl-`; the group selects pool=lab.
 * Run under `flock /tmp/berth-lab-tests.lock`.
 *
 * One environment, three services of 6 replicas: `web` (rolling), `bg` (blue-green) and
 * `pinned` (rolling, `placement.rebalance: false`).
 *   2 nodes (3 + 3 each) → 3 nodes: web and bg reach 2 + 2 + 2 within 60 s with no failed request
 *   through nginx; pinned keeps 3 + 3 + 0; berth_rebalances_total counts two balanced.
 *   → back to 2 nodes: every service 3 + 3, no failed request.
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
  spec(nodes: number): Environment {
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
        },
      },
    }) as Environment;
  }

  async resize(nodes: number): Promise<void> {
    await this.store.apply(this.spec(nodes));
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

lab.hooks(webLoad, () => {
  void bgLoad.stop();
  return `rebalance: web ${webLoad.answers.length} requests (${webLoad.failures().length} failed), bg ${bgLoad.answers.length} (${bgLoad.failures().length} failed); ${JSON.stringify(measured)}; logs: ${lab.log}`;
});

test('2 → 3 nodes: web and the live blue-green colour reach 2 + 2 + 2 within 60 s with no failed request; pinned keeps 3 + 3 + 0', async () => {
  await lab.resize(2);
  await lab.until('Ready on 2 nodes', async () => (await lab.status())?.phase === 'Ready', 120_000, 500);
  liveBg = `rbl-1_bg_${(await lab.status())!.services.bg!.activeColor}`;
  await lab.spreadAll({ 'rbl-1_web': [3, 3], [liveBg]: [3, 3], 'rbl-1_pinned': [3, 3] }, 30_000);
  await lab.until('both routes serve', async () => (await lab.get(3_000, 'rbl-1-web')).status === 200 && (await lab.get(3_000, 'rbl-1-bg')).status === 200, 30_000);
  webLoad.start(25);
  bgLoad.start(25);

  const from = Date.now();
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
  assert.equal(st.conditions.find((c) => c.type === 'Unbalanced'), undefined);
  const metrics = await scrapeMetrics(lab.metricsUrls.controller!);
  assert.equal(metricTotal(metrics, 'berth_rebalances_total', 'result="balanced"'), 2, 'web and bg');
  assert.equal(metricTotal(metrics, 'berth_rebalances_total', 'service="pinned"'), 0);

  measured.growFailed = { web: failures(webLoad, from), bg: failures(bgLoad, from) };
  assert.deepEqual(webLoad.failures(from).slice(0, 5), [], 'web: no failed request');
  assert.deepEqual(bgLoad.failures(from).slice(0, 5), [], 'bg: no failed request');
});

test('3 → 2 nodes: every service back to 3 + 3 with no failed request', async () => {
  const from = Date.now();
  await lab.resize(2);
  await lab.spreadAll({ 'rbl-1_web': [3, 3], [liveBg]: [3, 3], 'rbl-1_pinned': [3, 3] }, 60_000);
  measured.shrinkSpreadSeconds = (Date.now() - from) / 1000;
  await lab.until('Ready on 2 nodes', async () => (await lab.status())?.phase === 'Ready', 30_000, 500);
  // The released node's tasks were stopped: give nginx the time to have noticed any failure.
  await new Promise((r) => setTimeout(r, 2_000));
  await webLoad.stop();
  await bgLoad.stop();
  measured.shrinkFailed = { web: failures(webLoad, from), bg: failures(bgLoad, from) };
  assert.deepEqual(webLoad.failures(from).slice(0, 5), [], 'web: no failed request');
  assert.deepEqual(bgLoad.failures(from).slice(0, 5), [], 'bg: no failed request');
});
