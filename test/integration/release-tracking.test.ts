/**
 * Digest pinning and tag tracking on the real lab: `berth controller` and `berth proxy` as child
 * processes, the lab registry, nginx in front. Names are `rel-`. Run under
 * `flock /tmp/berth-lab-tests.lock`.
 *
 *   qa applies web:<tag> (the lab's v1 under a tag of this run) → Swarm runs web:<tag>@<v1 digest>
 *   → the tag is moved to v2's manifest in the registry (a CI push): nothing changes while the
 *     service does not track it
 *   → `track: 5s` set (a spec change: resolved again at once) → qa cuts over to v2, 0 failed requests
 *   → the tag moved back to v1 with tracking on: qa rolls within 2 periods
 *   → a tag on a registry that does not answer, then an unknown tag: ImageUnresolved, qa keeps
 *     serving what it ran, Swarm untouched
 *   → registry notifications: `track: 1h`, a second registry process on the lab registry's storage
 *     notifies the controller (bearer token); a push through it rolls qa out within seconds
 *   → `berth rollback env` (no spec.promotion): qa runs the previous release again until the spec
 *     names another image.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Environment } from '../../src/api/index.js';
import { planLab } from '../../src/lab/plan.js';
import { RegistryClient } from '../../src/registry/client.js';
import { BlueGreenLab, freePort, sleep, stopChild } from '../support/bluegreen-lab.js';

// The controller takes registry notifications with this token (its children inherit the variable).
const notifyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-notify-test-'));
const NOTIFY_TOKEN = `rel-${process.pid}-${Math.random().toString(36).slice(2)}`;
fs.writeFileSync(path.join(notifyDir, 'token'), NOTIFY_TOKEN);
process.env.BERTH_REGISTRY_NOTIFICATIONS_TOKEN_FILE = path.join(notifyDir, 'token');

const bg = new BlueGreenLab('rel-qa', 'rel-g', 1);
const { lab } = bg;
const registry = new RegistryClient({ insecure: [lab.registry] });
const REPO = `${lab.registry}/web`;
const TAG = `rel-${process.pid}`;
const IMAGE = `${REPO}:${TAG}`;
const TRACK_S = 5;
const load = bg.load();
const notes: string[] = [];
bg.hooks(load, () => `release-tracking: ${notes.join('; ')}; requests ${load.answers.length}, failed ${load.failures().length}`);

function spec(image: string, track?: string): Environment {
  const env = bg.envSpec('v1', { replicas: 1 });
  const web = env.spec.services.web!;
  web.image = image;
  if (track) web.track = track;
  return env;
}

/** The image the Swarm service that nginx's route points at runs. */
async function servedImage(): Promise<string | undefined> {
  const color = (await bg.route())?.color;
  if (!color) return undefined;
  const name = `${bg.env}_web_${color}`;
  const list = (await bg.docker.listServices({ filters: { name: [name] } } as never)) as unknown as Array<{ Spec: { Name: string; TaskTemplate: { ContainerSpec: { Image: string } } } }>;
  return list.find((s) => s.Spec.Name === name)?.Spec.TaskTemplate.ContainerSpec.Image;
}

async function swarmSpecs(): Promise<string> {
  const list = (await bg.servicesOfEnv()) as unknown as Array<{ Spec: unknown }>;
  return JSON.stringify(list.map((s) => s.Spec));
}

let d1 = '';
let d2 = '';

test('qa applies a tag: Swarm runs it by digest; a moved tag changes nothing until tracked', async () => {
  d1 = await registry.resolveDigest(lab.image('v1'));
  d2 = await registry.resolveDigest(lab.image('v2'));
  assert.notEqual(d1, d2);
  await registry.tagDigest(REPO, d1, TAG);
  await bg.store.apply(spec(IMAGE));
  await bg.until('qa Ready', async () => (await bg.status())?.phase === 'Ready', 90_000, 500);
  await bg.servingOnly('v1');
  load.start(20);
  assert.equal(await servedImage(), `${IMAGE}@${d1}`);
  const st = (await bg.status())!;
  assert.equal(st.images?.web?.digest, d1);
  assert.equal(st.services.web?.image, `${IMAGE}@${d1}`);

  await registry.tagDigest(REPO, d2, TAG);
  assert.equal(await registry.resolveDigest(IMAGE), d2, 'the registry moved the tag');
  const before = await swarmSpecs();
  await sleep(12_000); // past a --resync (10 s) of the controller
  assert.equal(await swarmSpecs(), before, 'untracked: the Swarm is untouched');
  assert.equal((await bg.status())?.images?.web?.digest, d1);
  assert.equal((await bg.get()).body, 'v1');
});

test('track set: the moved tag is rolled out; moved again, qa follows within 2 periods, 0 failed requests', async () => {
  await bg.store.apply(spec(IMAGE, `${TRACK_S}s`));
  await bg.until('qa serves v2 by digest', async () => (await servedImage()) === `${IMAGE}@${d2}`, 90_000, 250);
  await bg.servingOnly('v2');

  const moved = Date.now();
  await registry.tagDigest(REPO, d1, TAG);
  const noticed = await bg.until('the tracked tag is resolved again', async () => (await bg.status())?.images?.web?.digest === d1 && Date.now(), 3 * TRACK_S * 1000, 100);
  const seconds = (noticed - moved) / 1000;
  notes.push(`moved tag noticed after ${seconds.toFixed(1)} s (track ${TRACK_S}s)`);
  assert.ok(seconds <= 2 * TRACK_S, `noticed within 2 periods (${seconds} s)`);
  await bg.until('qa serves v1 by digest', async () => (await servedImage()) === `${IMAGE}@${d1}`, 90_000, 250);
  await bg.servingOnly('v1');
  notes.push(`moved tag → nginx serves only v1 after ${((Date.now() - moved) / 1000).toFixed(1)} s`);
  await load.stop();
  assert.deepEqual(load.failures(), [], 'no failed request through nginx');
});

test('ImageUnresolved: an unreachable registry or an unknown tag changes nothing, qa keeps serving', async () => {
  for (const [image, cause] of [[`10.77.0.1:5009/web:${TAG}`, /ECONNREFUSED|fetch failed/], [`${REPO}:rel-missing-${process.pid}`, /HTTP 404/]] as const) {
    const before = await swarmSpecs();
    await bg.store.apply(spec(image));
    await bg.until(`ImageUnresolved for ${image}`, async () => (await bg.status())?.conditions.some((c) => c.type === 'ImageUnresolved' && c.status === 'True' && cause.test(c.message)), 60_000, 250);
    assert.equal((await bg.status())?.phase, 'Degraded');
    await sleep(3_000);
    assert.equal(await swarmSpecs(), before, `${image}: the Swarm is untouched`);
    const a = await bg.get();
    assert.equal(a.status, 200);
    assert.equal(a.body, 'v1');
  }
});

test('registry notifications: with track 1h, a push the registry notifies rolls qa out within seconds', async () => {
  // A second registry process on the lab registry's storage, notifying the controller: a push
  // through it is a push to the lab registry, which the nodes pull from.
  const addr = `127.0.0.1:${await freePort()}`;
  const controller = new URL(bg.metricsUrls.controller!);
  const config = path.join(notifyDir, 'registry.yml');
  fs.writeFileSync(
    config,
    `version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: ${planLab({ stateDir: lab.stateDir }).registry.storage} }, delete: { enabled: true } }
http: { addr: ${addr} }
notifications:
  endpoints:
    - name: berth
      url: http://${controller.host}/registry/notifications
      headers: { Authorization: [Bearer ${NOTIFY_TOKEN}] }
      timeout: 2s
      threshold: 3
      backoff: 1s
`,
  );
  const out = fs.openSync(path.join(notifyDir, 'registry.log'), 'a');
  const second = spawn('docker-registry', ['serve', config], { stdio: ['ignore', out, out] });
  try {
    await bg.until('the second registry answers', async () => (await fetch(`http://${addr}/v2/`).catch(() => undefined))?.status === 200, 15_000, 100);
    await bg.store.apply(spec(IMAGE, '1h'));
    await bg.until('qa Ready on the tracked tag', async () => {
      const st = await bg.status();
      return st?.phase === 'Ready' && st.images?.web?.ref === IMAGE && !st.conditions.some((c) => c.type === 'ImageUnresolved');
    }, 60_000, 250);
    const running = (await bg.status())!.images!.web!.digest;
    const next = running === d1 ? d2 : d1;
    const pushed = Date.now();
    await new RegistryClient({}).tagDigest(`${addr}/web`, next, TAG);
    const noticed = await bg.until('the notified push is resolved', async () => (await bg.status())?.images?.web?.digest === next && Date.now(), 20_000, 100);
    const seconds = (noticed - pushed) / 1000;
    notes.push(`notified push resolved after ${seconds.toFixed(1)} s (track 1h)`);
    assert.ok(seconds < 8, `resolved at once, not at the 1h period nor by the 10 s resync (${seconds} s)`);
    await bg.until('qa serves the pushed digest', async () => (await servedImage()) === `${IMAGE}@${next}`, 60_000, 250);
    await bg.servingOnly(next === d2 ? 'v2' : 'v1');
    notes.push(`notified push → nginx serves only it after ${((Date.now() - pushed) / 1000).toFixed(1)} s`);
    const metrics = await (await fetch(bg.metricsUrls.controller!)).text();
    assert.match(metrics, /berth_registry_notifications_total\{result="accepted"\} [1-9]/);
  } finally {
    await stopChild(second);
    fs.rmSync(notifyDir, { recursive: true, force: true });
  }
});

test('berth rollback without spec.promotion: the previous release runs until the spec names another image', async () => {
  const berth = (...args: string[]) => execFileSync(process.execPath, ['bin/berth.js', ...args], { env: process.env, encoding: 'utf8' });
  // The pushed digest becomes a release once qa is Ready with it (after the old colour's drain).
  const st = await bg.until('qa Ready with the pushed release', async () => {
    const s = await bg.status();
    return s?.phase === 'Ready' && s.release?.images.web === (await servedImage()) && (s.history?.length ?? 0) >= 2 && s;
  }, 30_000, 250);
  const previous = st.history!.find((h) => h.id !== st.release!.id)!;
  const from = Date.now();
  assert.match(berth('rollback', 'env', bg.env, '--by', 'release-test'), new RegExp(`rolls back to release ${previous.id}`));
  await bg.until('qa runs the previous release', async () => (await servedImage()) === previous.images.web, 60_000, 250);
  await bg.servingOnly(previous.images.web!.endsWith(d1) ? 'v1' : 'v2');
  notes.push(`rollback → nginx serves only the previous release after ${((Date.now() - from) / 1000).toFixed(1)} s`);
  // Ready again: the rolled-back release is recorded and the old colour's drain is over.
  await bg.until('qa Ready, pinned to the previous release', async () => {
    const s = await bg.status();
    return s?.phase === 'Ready' && s.release?.id === previous.id && s.conditions.some((c) => c.type === 'Pinned' && c.reason === 'RolledBack');
  }, 30_000, 250);
  assert.match(berth('describe', 'env', bg.env), /Rolled Back: +to release \w+ .*pinned until the spec's images change/);

  const other = previous.images.web!.endsWith(d1) ? 'v2' : 'v1';
  await bg.store.apply(spec(lab.image(other), '1h'));
  await bg.until('the spec names another image: the pin ends', async () => (await servedImage())?.startsWith(`${lab.image(other)}@`), 60_000, 250);
  await bg.servingOnly(other);
  assert.equal((await bg.status())?.rollback, undefined);
});
