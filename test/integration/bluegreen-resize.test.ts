/**
 * Resizing a blue-green service on the real lab is not a release (DESIGN.md round 2): berth
 * controller and berth proxy as child processes, the lab's nginx in front, load through it.
 * Names are `bgr-`; the group selects pool=lab. Run under `flock /tmp/berth-lab-tests.lock`.
 *
 *   v1 at 1 replica → 3: the live colour reaches 3 running within 15 s, in place (its task kept,
 *   its spec hash unchanged); the other colour never gets a replica; the route's colour never moves.
 *   → v2 with autoPromote false waits for promotion at 3 → resized to 2: both colours reach 2
 *   → `berth promote` cuts over to v2 with no failed request.
 * Prints the measured times.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import type { Color } from '../../src/api/status.js';
import { BlueGreenLab } from '../support/bluegreen-lab.js';

const bg = new BlueGreenLab('bgr-1', 'bgr-g', 3);
const load = bg.load();
const MANUAL = { autoPromote: false };
const measured: Record<string, unknown> = {};

/** Samples the Swarm every 100 ms until stopped: the highest replica count each colour had, and every route colour seen. */
class Watch {
  readonly peak: Partial<Record<Color, number>> = {};
  readonly routeColors = new Set<string>();
  private running = true;
  private readonly done: Promise<void>;

  constructor() {
    this.done = (async () => {
      while (this.running) {
        for (const c of ['blue', 'green'] as const) {
          const n = await bg.replicas(c);
          if (n !== undefined) this.peak[c] = Math.max(this.peak[c] ?? 0, n);
        }
        this.routeColors.add((await bg.route())?.color ?? 'none');
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
  }

  async stop(): Promise<this> {
    this.running = false;
    await this.done;
    return this;
  }
}

async function blueService() {
  const list = (await bg.docker.listServices({ filters: { name: ['bgr-1_web_blue'] } } as never)) as unknown as Array<{ ID: string; Spec: { Name: string; Labels: Record<string, string> } }>;
  return list.find((s) => s.Spec.Name === 'bgr-1_web_blue')!;
}

bg.hooks(load, () => `bluegreen-resize: ${load.answers.length} requests through nginx, ${load.failures().length} failed; ${JSON.stringify(measured)}; logs: ${bg.log}`);

test('1 → 3 replicas: the live colour reaches 3 running within 15 s; no second colour, no route change', async () => {
  await bg.apply('v1', { replicas: 1 });
  await bg.servingOnly('v1', 120_000);
  await bg.until('Ready', async () => (await bg.status())?.phase === 'Ready');
  assert.equal((await bg.route())?.color, 'blue');
  assert.equal(await bg.replicas('green'), undefined, 'the first deploy made only blue');
  const hash = (await blueService()).Spec.Labels['berth.spec-hash'];
  const [firstTask] = await bg.runningTasks('blue');
  load.start(50);

  const watch = new Watch();
  const from = Date.now();
  await bg.apply('v1', { replicas: 3 });
  await bg.until('blue runs 3', async () => (await bg.replicas('blue')) === 3 && (await bg.running('blue')) === 3, 15_000, 100);
  measured.resizeToThreeRunningSeconds = (Date.now() - from) / 1000;
  await bg.until('the route holds 3 servers', async () => (await bg.route())?.servers.length === 3, 15_000, 100);
  measured.resizeToThreeRoutedSeconds = (Date.now() - from) / 1000;
  await bg.until('Ready', async () => (await bg.status())?.phase === 'Ready', 15_000);
  await watch.stop();

  assert.equal(watch.peak.green, undefined, `green was given replicas: ${JSON.stringify(watch.peak)}`);
  assert.deepEqual([...watch.routeColors], ['blue'], 'the route stayed on blue');
  assert.equal((await blueService()).Spec.Labels['berth.spec-hash'], hash, 'the same version: the spec hash is unchanged');
  assert.ok((await bg.runningTasks('blue')).includes(firstTask!), 'scaled in place: the first task still runs');
  const st = await bg.status();
  assert.equal(st?.services.web?.cutovers?.length, 1, 'no cutover');
  assert.equal(st?.services.web?.runningReplicas, 3);
  assert.deepEqual(load.failures(from).slice(0, 5), []);
});

test('resized while v2 waits for promotion (3 → 2): both colours reach 2; the promote then cuts over with no failed request', async () => {
  await bg.apply('v2', { replicas: 3, strategy: MANUAL });
  await bg.until('green waits for promotion at 3', async () => (await bg.status())?.services.web?.pending?.state === 'WaitingForPromotion' && (await bg.running('green')) === 3, 60_000);
  assert.equal((await bg.route())?.color, 'blue');

  const watch = new Watch();
  const from = Date.now();
  await bg.apply('v2', { replicas: 2, strategy: MANUAL });
  await bg.until(
    'both colours at 2',
    async () => (await bg.replicas('blue')) === 2 && (await bg.replicas('green')) === 2 && (await bg.running('blue')) === 2 && (await bg.running('green')) === 2,
    15_000,
    100,
  );
  measured.resizeBothToTwoSeconds = (Date.now() - from) / 1000;
  await bg.until('the live route holds 2 servers', async () => (await bg.route())?.servers.length === 2, 15_000, 100);
  await bg.until('green waits for promotion at 2', async () => (await bg.status())?.services.web?.pending?.state === 'WaitingForPromotion', 30_000);
  await watch.stop();
  assert.deepEqual([...watch.routeColors], ['blue'], 'a resize never moves the route');
  assert.equal(watch.peak.green, 3, 'green was never given more than its size');
  await bg.servingOnly('v1');
  measured.failuresDuringResize = load.failures(from).length;

  const promoteAt = Date.now();
  await promisify(execFile)(process.execPath, ['bin/berth.js', 'promote', 'env', 'bgr-1', 'web'], { env: process.env });
  await bg.servingOnly('v2');
  measured.promoteToServingSeconds = (Date.now() - promoteAt) / 1000;
  assert.equal((await bg.route())?.color, 'green');
  assert.equal((await bg.route())?.servers.length, 2, 'promotion kept the capacity');
  await bg.until('blue drained to 0', async () => (await bg.replicas('blue')) === 0, 30_000);
  assert.equal(await bg.replicas('green'), 2);
  await load.stop();
  measured.failuresDuringPromote = load.failures(promoteAt).length;
  assert.deepEqual(load.failures(from).slice(0, 5), [], `${load.failures(from).length} failed requests`);
  const st = await bg.status();
  assert.equal(st?.services.web?.cutovers?.at(-1)?.result, 'succeeded');
  assert.equal(st?.services.web?.activeColor, 'green');
});
