/**
 * Promotion on the real lab: qa and prod (blue-green, one node each), `berth controller` and
 * `berth proxy` as child processes, the lab registry, nginx in front. Names are `relp-`. Run under
 * `flock /tmp/berth-lab-tests.lock`.
 *
 *   qa runs web:<tag> = v2 by digest; prod (from: qa, soak: 5s, approval: manual, markTag: tested)
 *   runs its own web:v1
 *   → after qa is Ready with its release for 5 s, prod waits: PromotionPending (approval)
 *   → `berth approve env prod` → prod cuts over blue-green to exactly qa's digest, 0 failed
 *     requests through nginx; web:tested points at that digest; prod's release is qa's
 *   → `berth rollback env prod` → prod runs the previous release's digest again, 0 failed requests
 *   → the lab registry stopped, qa given a new tag: ImageUnresolved, prod and qa keep serving.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import type { Environment, EnvironmentStatus } from '../../src/api/index.js';
import { RegistryClient } from '../../src/registry/client.js';
import { BlueGreenLab, sleep } from '../support/bluegreen-lab.js';
import { isAlive } from '../../src/lab/procs.js';
import { labPid } from '../support/lab.js';

const prod = new BlueGreenLab('relp-prod', 'relp-g', 1);
/** qa shares prod's processes and group: only its helpers are used. */
const qa = new BlueGreenLab('relp-qa', 'relp-g', 1);
const { lab } = prod;
const registry = new RegistryClient({ insecure: [lab.registry] });
const REPO = `${lab.registry}/web`;
const TAG = `relp-${process.pid}`;
const load = prod.load();
const notes: string[] = [];

before(async () => {
  await qa.store.delete('Environment', qa.env);
  await prod.start();
});
after(async () => {
  await load.stop();
  try {
    await qa.store.markDeleted(qa.env);
    await qa.until('qa gone', async () => (await qa.servicesOfEnv()).length === 0 && !(await qa.status()), 60_000, 500);
  } finally {
    // prod's controller and proxy are this file's children: they stop whatever happened above.
    await prod.stop();
    qa.etcd.close();
    console.log(`release-promotion: ${notes.join('; ')}; prod requests ${load.answers.length}, failed ${load.failures().length}`);
  }
});

function spec(lab: BlueGreenLab, image: string, extra: Partial<Environment['spec']> = {}): Environment {
  const env = lab.envSpec('v1', { replicas: 1 });
  env.spec.services.web!.image = image;
  Object.assign(env.spec, extra);
  return env;
}

async function servedImage(l: BlueGreenLab): Promise<string | undefined> {
  const color = (await l.route())?.color;
  if (!color) return undefined;
  const name = `${l.env}_web_${color}`;
  const list = (await l.docker.listServices({ filters: { name: [name] } } as never)) as unknown as Array<{ Spec: { Name: string; TaskTemplate: { ContainerSpec: { Image: string } } } }>;
  return list.find((s) => s.Spec.Name === name)?.Spec.TaskTemplate.ContainerSpec.Image;
}

function berth(...args: string[]): string {
  return execFileSync(process.execPath, ['bin/berth.js', ...args], { env: process.env, encoding: 'utf8' });
}

let d1 = '';
let d2 = '';
let qaStatus: EnvironmentStatus;

test('after qa is Ready with v2 for the soak, prod waits for approval; approve → prod cuts over to exactly qa\'s digest, tag marked', async () => {
  d1 = await registry.resolveDigest(lab.image('v1'));
  d2 = await registry.resolveDigest(lab.image('v2'));
  await registry.tagDigest(REPO, d2, TAG);
  await qa.store.apply(spec(qa, `${REPO}:${TAG}`));
  await prod.store.apply(spec(prod, `${REPO}:v1`, { promotion: { from: qa.env, soak: '5s', approval: 'manual', markTag: 'tested' } }));
  await prod.until('prod serves v1', async () => (await servedImage(prod)) === `${REPO}:v1@${d1}`, 90_000, 250);
  await prod.servingOnly('v1');
  load.start(20);
  qaStatus = await qa.until('qa Ready with a release', async () => {
    const s = await qa.status();
    return s?.phase === 'Ready' && s.release ? s : undefined;
  }, 90_000, 250);
  const qaRelease = qaStatus.release!;
  assert.equal(qaRelease.images.web, `${REPO}:${TAG}@${d2}`);
  const soakEnds = Date.parse(qaRelease.readySince) + 5_000;

  const waiting = await prod.until('prod PromotionPending (approval)', async () => {
    const s = await prod.status();
    return s?.promotionPending?.gate === 'approval' ? s : undefined;
  }, 60_000, 250);
  notes.push(`approval gate reached ${((Date.now() - soakEnds) / 1000).toFixed(1)} s after the soak ended`);
  assert.ok(Date.now() >= soakEnds, 'not before the soak');
  assert.equal(waiting.promotionPending?.release, qaRelease.id);
  assert.equal(waiting.conditions.find((c) => c.type === 'PromotionPending')?.reason, 'WaitingForApproval');
  assert.equal(await servedImage(prod), `${REPO}:v1@${d1}`, 'nothing promoted before approval');
  assert.match(berth('describe', 'env', prod.env), /approval\s+manual\s+waiting/);

  const approved = Date.now();
  assert.match(berth('approve', 'env', prod.env, '--by', 'release-test'), new RegExp(`release ${qaRelease.id} approved`));
  await prod.until('prod runs qa\'s digest', async () => (await servedImage(prod)) === `${REPO}@${d2}`, 90_000, 250);
  await prod.servingOnly('v2');
  notes.push(`approve → nginx serves only v2 in ${((Date.now() - approved) / 1000).toFixed(1)} s`);
  const st = await prod.until('prod Ready with qa\'s release', async () => {
    const s = await prod.status();
    return s?.phase === 'Ready' && s.release?.id === qaRelease.id ? s : undefined;
  }, 60_000, 250);
  assert.equal(st.release?.approvedBy, 'release-test');
  assert.equal(st.conditions.find((c) => c.type === 'Promoted')?.status, 'True');
  assert.equal(st.promotionPending, undefined);
  assert.equal(await registry.resolveDigest(`${REPO}:tested`), d2, 'markTag: web:tested is the promoted digest');
  assert.deepEqual(load.failures(), [], 'no failed request through nginx during the cutover');
});

test('rollback returns prod to the previous release\'s digest; history lists both', async () => {
  const before = (await prod.status())!;
  const history = JSON.parse(berth('history', 'env', prod.env, '-o', 'json')) as { release: { id: string }; history: Array<{ id: string; images: Record<string, string> }> };
  assert.equal(history.release.id, before.release?.id);
  assert.equal(history.history.length, 2);
  const previous = history.history[1]!;
  assert.equal(previous.images.web, `${REPO}:v1@${d1}`);
  const from = Date.now();
  assert.match(berth('rollback', 'env', prod.env, '--by', 'release-test'), new RegExp(`rolls back to release ${previous.id}`));
  await prod.until('prod runs the previous digest', async () => (await servedImage(prod))?.endsWith(`@${d1}`), 90_000, 250);
  await prod.servingOnly('v1');
  notes.push(`rollback → nginx serves only v1 in ${((Date.now() - from) / 1000).toFixed(1)} s`);
  const st = await prod.until('prod Ready with the previous release', async () => {
    const s = await prod.status();
    return s?.phase === 'Ready' && s.release?.id === previous.id ? s : undefined;
  }, 60_000, 250);
  assert.equal(st.conditions.find((c) => c.type === 'Promoted')?.reason, 'RolledBack');
  await sleep(6_000); // past a promotion poll: the rolled-back-from release is not promoted again
  assert.equal((await prod.status())?.release?.id, previous.id);
  assert.deepEqual(load.failures(), [], 'no failed request through nginx');
});

test('the registry stopped: qa given a new tag gets ImageUnresolved, prod and qa keep serving', async () => {
  const pid = labPid(lab, 'registry');
  process.kill(pid, 'SIGTERM');
  try {
    await qa.until('the lab registry stopped', async () => !isAlive(pid), 15_000, 100);
    await qa.store.apply(spec(qa, `${REPO}:${TAG}-next`));
    const st = await qa.until('qa ImageUnresolved', async () => {
      const s = await qa.status();
      return s?.conditions.some((c) => c.type === 'ImageUnresolved' && c.status === 'True') ? s : undefined;
    }, 60_000, 250);
    assert.match(st.conditions.find((c) => c.type === 'ImageUnresolved')!.message, /^web: /, 'names the service');
    await sleep(2_000);
    const [a, b] = await Promise.all([qa.get(), prod.get()]);
    assert.deepEqual([a.status, a.body], [200, 'v2']);
    assert.deepEqual([b.status, b.body], [200, 'v1']);
  } finally {
    // `berth lab up` starts what of the lab is not running: here, the registry.
    execFileSync(process.execPath, ['bin/berth.js', 'lab', 'up'], { stdio: 'ignore', timeout: 120_000 });
  }
  await load.stop();
  assert.deepEqual(load.failures(), []);
});
