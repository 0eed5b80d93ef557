/**
 * Blue-green on the real lab, end to end: `berth controller` and `berth proxy` as child processes
 * (node bin/berth.js, lab env), the lab's nginx in front, a load generator through nginx. Names
 * are `bg-`; the group selects pool=lab. Run under `flock /tmp/berth-lab-tests.lock`.
 *
 *   v1 served → spec to v2 under load: 0 failures, v1→v2 with no flap back, blue at 0 after drain
 *   ("no flap back", as in cutover-load.test.ts: no old answer to a request started after the switch
 *   was confirmed, i.e. after every nginx worker that accepted before the route changed stopped
 *   accepting; nginx's graceful reload overlaps old and new workers for a moment before that)
 *   → the proxy SIGSTOPped across v2→v1: v2 keeps serving and is not drained until it resumes
 *   → a second environment naming the same upstream: RouteConflict, the first keeps serving
 *   → web:broken: the route never moves, v2 keeps answering, status says why
 *   → 6 cutovers alternating v1/v2, 0 failures.
 * Prints cutover timings (apply → nginx serving only the new version): median and p99.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Environment } from '../../src/api/index.js';
import { parseResource } from '../../src/api/resource.js';
import { nginxWorkers } from '../../src/routing/nginx-process.js';
import { BlueGreenLab, sleep } from '../support/bluegreen-lab.js';
import type { WebTag } from '../support/lab.js';

const bg = new BlueGreenLab('bg-1', 'bg-g', 2);
const { lab } = bg;
const apply = (tag: WebTag) => bg.apply(tag);
const status = () => bg.status();
const route = () => bg.route();
const replicas = (color: 'blue' | 'green') => bg.replicas(color);
const until = bg.until.bind(bg);
const servingOnly = bg.servingOnly.bind(bg);

const PID_FILE = process.env.BERTH_NGINX_PID_FILE;

/**
 * Applies `next` and waits until nginx serves only it; returns apply → only-new seconds and when
 * the switch was confirmed (the route's colour changed and every nginx worker that accepted
 * before it stopped accepting).
 */
async function cutover(current: WebTag, next: WebTag): Promise<{ seconds: number; confirmed: number; oldColor: 'blue' | 'green' }> {
  const oldColor = (await route())!.color!;
  const before = PID_FILE ? await nginxWorkers(PID_FILE) : [];
  const from = Date.now();
  await apply(next);
  await until(`route leaves ${oldColor}`, async () => (await route())?.color !== oldColor, 60_000, 20);
  const confirmed = await until(
    'old nginx workers stopped accepting',
    async () => (PID_FILE ? (await nginxWorkers(PID_FILE)).some((w) => before.includes(w)) === false && Date.now() : Date.now() + 2_000),
    30_000,
    20,
  );
  await servingOnly(next);
  const seconds = (Date.now() - from) / 1000;
  cutoverSeconds.push(seconds);
  overlaps.push(load.overlapMs(current, next, from));
  return { seconds, confirmed, oldColor };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

// ---- the test

const load = bg.load();
const cutoverSeconds: number[] = [];
const overlaps: number[] = [];

bg.hooks(load, () => {
  const sorted = [...cutoverSeconds].sort((a, b) => a - b);
  return (
    `bluegreen-lab: ${load.answers.length} requests through nginx, ${load.failures().length} failed; ` +
    `cutovers (apply → nginx serving only the new version, s): n=${sorted.length} ` +
    `median=${quantile(sorted, 0.5).toFixed(2)} p99=${quantile(sorted, 0.99).toFixed(2)} all=${JSON.stringify(cutoverSeconds.map((s) => +s.toFixed(2)))}; ` +
    `old/new answers interleaved during nginx reload (ms): ${JSON.stringify(overlaps)}\n` +
    `logs: ${bg.log}`
  );
});

test('v1 is served through nginx via the route (blue)', async () => {
  await apply('v1');
  await servingOnly('v1', 120_000);
  const r = await route();
  assert.equal(r?.color, 'blue');
  assert.equal(r?.servers.length, 2);
  const st = await until('Ready', async () => ((await status())?.phase === 'Ready' ? status() : undefined));
  assert.equal(st!.services.web?.activeColor, 'blue');
  load.start(50);
});

test('v1 → v2 under load: 0 failures, no flap back, blue at 0 after drain', async () => {
  const { confirmed } = await cutover('v1', 'v2');
  const r = await route();
  assert.equal(r?.color, 'green');
  await until('blue scaled to 0 after drain', async () => (await replicas('blue')) === 0, 30_000);
  await sleep(2_000);
  assert.deepEqual(load.failures().slice(0, 5), [], `${load.failures().length} failed requests`);
  assert.deepEqual(load.flapsBack('v1', confirmed).slice(0, 5), [], 'v1 answered after the switch to v2 was confirmed');
  const st = await status();
  const rec = st?.services.web?.cutovers?.at(-1);
  assert.equal(rec?.result, 'succeeded');
  assert.ok(rec?.toImage.startsWith(`${lab.image('v2')}@sha256:`), `the cutover ran v2 by digest: ${rec?.toImage}`);
  assert.equal(st?.services.web?.activeColor, 'green');
});

test('the proxy SIGSTOPped across a cutover: the old colour keeps serving (0 failed requests) until the proxy applies, then drains', async () => {
  const oldColor = (await route())!.color!;
  const proxy = bg.proxyProcess;
  proxy.kill('SIGSTOP');
  try {
    await apply('v1');
    await until(`route leaves ${oldColor}`, async () => (await route())?.color !== oldColor, 60_000, 50);
    // drain is 2 s and the proxy's lease (10 s) runs out meanwhile: only the acknowledgement it
    // never wrote holds the old colour.
    await sleep(15_000);
    assert.equal(await replicas(oldColor), 2, 'the old colour is held while the proxy has not applied the switch');
    for (let i = 0; i < 10; i++) assert.equal((await bg.get(3_000)).body, 'v2', 'nginx (not reloaded) still serves the old colour');
    assert.match((await status())?.conditions.find((c) => c.type === 'CutoverReady')?.message ?? '', /keeps serving until proxies/);
  } finally {
    proxy.kill('SIGCONT');
  }
  await servingOnly('v1');
  await until(`${oldColor} scaled to 0 after the proxy applied and the drain`, async () => (await replicas(oldColor)) === 0, 30_000);
  assert.deepEqual(load.failures().slice(0, 5), [], `${load.failures().length} failed requests`);
  // Back to where the next test starts: v2 serving, the other colour drained.
  const back = await cutover('v1', 'v2');
  await until(`${back.oldColor} scaled to 0 after drain`, async () => (await replicas(back.oldColor)) === 0, 30_000);
});

test('a second environment naming the same upstream gets RouteConflict and changes nothing; the first keeps serving', async () => {
  const before = await route();
  const intruder = parseResource({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: 'bg-x' },
    spec: { group: bg.group, nodes: 1, services: { web: { image: lab.image('v1'), replicas: 1, ports: [{ target: 8080 }], route: { upstream: bg.host } } } },
  }) as Environment;
  await bg.store.apply(intruder);
  try {
    const st = await until('bg-x has RouteConflict', async () => {
      const s = await bg.statuses.getStatus('Environment', 'bg-x');
      return s?.conditions.some((c) => c.type === 'RouteConflict' && c.status === 'True') && s.services.web?.runningReplicas === 1 ? s : undefined;
    }, 90_000);
    assert.equal(st.phase, 'Degraded');
    assert.match(st.conditions.find((c) => c.type === 'RouteConflict')!.message, new RegExp(`belongs to ${bg.env}/web`));
    assert.deepEqual(await route(), before, 'the owner\'s route is untouched');
    for (let i = 0; i < 10; i++) assert.equal((await bg.get(3_000)).body, 'v2');
  } finally {
    await bg.store.markDeleted('bg-x');
    await until('bg-x removed', async () => {
      const left = (await bg.docker.listServices({ filters: { label: ['berth.env=bg-x'] } } as never)) as unknown as unknown[];
      return left.length === 0 && !(await bg.statuses.getStatus('Environment', 'bg-x'));
    }, 60_000, 500);
  }
  assert.deepEqual(await route(), before, 'deleting bg-x left the owner\'s route alone');
  assert.deepEqual(load.failures().slice(0, 5), [], `${load.failures().length} failed requests`);
});

test('web:broken: abandoned, the route never moves, v2 keeps answering, status says why', async () => {
  const before = await route();
  const from = Date.now();
  // A shorter deadline than the file's 30 s: the abandonment is what is tested, not its length.
  await bg.apply('broken', { strategy: { progressDeadline: '12s' } });
  const st = await until(
    'CutoverAbandoned',
    async () => {
      const r = await route();
      assert.deepEqual(r, before, 'the route moved');
      const s = await status();
      return s?.conditions.some((c) => c.reason === 'CutoverAbandoned') ? s : undefined;
    },
    60_000,
    200,
  );
  assert.equal(st!.phase, 'Degraded');
  const cond = st!.conditions.find((c) => c.type === 'CutoverReady')!;
  assert.match(cond.message, /web:broken/);
  assert.match(cond.message, /not healthy within 12s/);
  assert.equal(st!.services.web?.pending?.state, 'Abandoned');
  assert.equal(st!.services.web?.cutovers?.at(-1)?.result, 'abandoned');
  await until('broken colour scaled to 0', async () => (await replicas('blue')) === 0, 20_000);
  await sleep(1_000);
  assert.deepEqual(await route(), before);
  const during = load.answers.filter((a) => a.start >= from);
  assert.ok(during.length > 100, `${during.length} requests while broken`);
  assert.deepEqual(during.filter((a) => a.body !== 'v2' || a.status !== 200).slice(0, 5), []);
  assert.deepEqual(load.failures().slice(0, 5), []);
});

test('6 cutovers in a row, alternating v1/v2, 0 failures', async () => {
  let current: WebTag = 'v2';
  for (let i = 0; i < 6; i++) {
    const next: WebTag = current === 'v2' ? 'v1' : 'v2';
    const { confirmed, oldColor: old } = await cutover(current, next);
    assert.notEqual((await route())?.color, old, `cutover ${i + 1}: colour changed`);
    await sleep(500);
    assert.deepEqual(load.flapsBack(current, confirmed).slice(0, 5), [], `cutover ${i + 1}: ${current} answered after the switch to ${next} was confirmed`);
    // The old colour drains and goes to 0 before the next change: every cutover brings up fresh tasks.
    await until(`cutover ${i + 1}: old colour at 0`, async () => (await replicas(old)) === 0, 30_000);
    current = next;
  }
  await load.stop();
  assert.ok(load.answers.length >= 2_000, `only ${load.answers.length} requests`);
  assert.deepEqual(load.failures().slice(0, 5), [], `${load.failures().length} of ${load.answers.length} failed`);
  const st = await until('Ready', async () => ((await status())?.phase === 'Ready' ? status() : undefined), 30_000);
  assert.equal(st!.services.web?.pending, undefined);
});
