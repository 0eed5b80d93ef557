/**
 * A private registry on the lab: the lab's registry with auth (TLS by the lab CA, htpasswd).
 * `berth controller` and `berth proxy` as child processes. Names are `auth-`. Run under
 * `flock /tmp/berth-lab-tests.lock`.
 *
 *   no node has the registry's image and none is logged in (dockerd keeps no credentials)
 *   → the controller, given the lab's login (--registry-auth-file's env), resolves the digest and
 *     hands the credentials to Swarm: the node pulls, qa serves v1
 *   → the controller again without credentials, qa moved to v2: ImageUnresolved (HTTP 401),
 *     the Swarm untouched, qa keeps serving v1.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Environment } from '../../src/api/index.js';
import { BlueGreenLab, sleep } from '../support/bluegreen-lab.js';

const bg = new BlueGreenLab('auth-qa', 'auth-g', 1);
const { lab } = bg;
const REPO = `${lab.env.BERTH_LAB_AUTH_REGISTRY}/web`;
const load = bg.load();
const notes: string[] = [];
bg.controllerEnv = { BERTH_REGISTRY_AUTH_FILE: lab.env.BERTH_LAB_AUTH_REGISTRY_CONFIG, NODE_EXTRA_CA_CERTS: lab.env.BERTH_LAB_AUTH_REGISTRY_CA };
bg.hooks(load, () => `registry-auth: ${notes.join('; ')}`);

function spec(tag: 'v1' | 'v2'): Environment {
  const env = bg.envSpec('v1', { replicas: 1 });
  env.spec.services.web!.image = `${REPO}:${tag}`;
  return env;
}

/** References to the registry's images that node `i` holds. */
async function heldRefs(i: number): Promise<string[]> {
  const images = (await lab.nodeDocker(i).listImages()) as Array<{ RepoTags?: string[] | null; RepoDigests?: string[] | null }>;
  return images.flatMap((img) => [...(img.RepoTags ?? []), ...(img.RepoDigests ?? [])]).filter((r) => r.startsWith(`${REPO}:`) || r.startsWith(`${REPO}@`));
}

async function swarmSpecs(): Promise<string> {
  return JSON.stringify(((await bg.servicesOfEnv()) as unknown as Array<{ Spec: unknown }>).map((s) => s.Spec));
}

test('with the login, a node that is not logged in pulls from the registry with auth; qa serves v1', async () => {
  for (let i = 1; i <= lab.nodeSockets.length; i++) {
    // Untag what an earlier run pulled (the layers stay: the lab registry's web shares them).
    for (const ref of await heldRefs(i)) await lab.nodeDocker(i).getImage(ref).remove({ force: true });
    assert.deepEqual(await heldRefs(i), [], `${lab.hostnames[i - 1]} holds none of ${REPO}`);
  }
  const t0 = Date.now();
  await bg.store.apply(spec('v1'));
  await bg.until('qa Ready', async () => (await bg.status())?.phase === 'Ready', 90_000, 250);
  await bg.servingOnly('v1');
  notes.push(`Ready and serving after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const digest = (await bg.status())?.images?.web?.digest;
  assert.match(digest ?? '', /^sha256:/);
  const pulled = [];
  for (let i = 1; i <= lab.nodeSockets.length; i++) if ((await heldRefs(i)).includes(`${REPO}@${digest}`)) pulled.push(lab.hostnames[i - 1]);
  assert.equal(pulled.length, 1, `one node pulled ${REPO}@${digest}: ${pulled.join(', ')}`);
  notes.push(`pulled by ${pulled[0]}`);
  load.start(20);
});

test('without credentials: ImageUnresolved (HTTP 401), the Swarm untouched, qa keeps serving v1', async () => {
  bg.controllerEnv = { BERTH_REGISTRY_AUTH_FILE: '/nonexistent/config.json', NODE_EXTRA_CA_CERTS: lab.env.BERTH_LAB_AUTH_REGISTRY_CA };
  await bg.restartController();
  const before = await swarmSpecs();
  await bg.store.apply(spec('v2'));
  const condition = await bg.until('ImageUnresolved', async () => (await bg.status())?.conditions.find((c) => c.type === 'ImageUnresolved' && c.status === 'True'), 30_000, 250);
  assert.match(condition.message, /HTTP 401/);
  assert.match(condition.message, new RegExp(`${REPO}:v2`));
  assert.equal((await bg.status())?.phase, 'Degraded');
  await sleep(3_000);
  assert.equal(await swarmSpecs(), before, 'the Swarm is untouched');
  await load.stop();
  assert.deepEqual(load.failures(), [], 'qa served throughout');
  assert.ok(load.answers.length > 0 && load.answers.every((a) => a.body === 'v1'), 'only v1 answered');
});
