/**
 * What a private deployment needs, on the lab: an image from the lab's registry with auth (TLS
 * by the lab CA, htpasswd), and a Swarm secret and config mounted by name. `berth controller`
 * and `berth proxy` as child processes. Names are `auth-`. Run under
 * `flock /tmp/berth-lab-tests.lock`.
 *
 *   a secret and a config made with Docker (as `docker secret/config create`); qa names a
 *   config that does not exist: SwarmObjectMissing, nothing created
 *   → no node has the registry's image and none is logged in (dockerd keeps no credentials);
 *     qa names the right config: the controller, given the lab's login (--registry-auth-file's
 *     env), resolves the digest and hands the credentials to Swarm: the node pulls, qa serves v1
 *     and the secret's and config's contents at their targets
 *   → the controller again without credentials, qa moved to v2: ImageUnresolved (HTTP 401),
 *     the Swarm untouched, qa keeps serving v1.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Environment } from '../../src/api/index.js';
import { BlueGreenLab, sleep } from '../support/bluegreen-lab.js';

const bg = new BlueGreenLab('auth-qa', 'auth-g', 1);
const { lab } = bg;
const REPO = `${lab.env.BERTH_LAB_AUTH_REGISTRY}/web`;
const load = bg.load();
const notes: string[] = [];
bg.controllerEnv = { BERTH_REGISTRY_AUTH_FILE: lab.env.BERTH_LAB_AUTH_REGISTRY_CONFIG, NODE_EXTRA_CA_CERTS: lab.env.BERTH_LAB_AUTH_REGISTRY_CA };
bg.hooks(load, () => `private-lab: ${notes.join('; ')}`);

const SECRET = `auth-pw-${process.pid}`;
const CONFIG = `auth-conf-${process.pid}`;
const TEST_LABEL = { 'berth-test': 'private-lab' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Secrets and configs of earlier runs (unused once their environment is gone) and of this one. */
async function removeObjects(): Promise<void> {
  const docker = lab.docker();
  const filters = { label: ['berth-test=private-lab'] };
  for (const s of (await docker.listSecrets({ filters } as object)) as Array<{ ID: string }>) await docker.getSecret(s.ID).remove().catch(() => undefined);
  for (const c of (await docker.listConfigs({ filters } as object)) as Array<{ ID: string }>) await docker.getConfig(c.ID).remove().catch(() => undefined);
}

before(async () => {
  await removeObjects();
  await lab.docker().createSecret({ Name: SECRET, Labels: TEST_LABEL, Data: b64(`secret-${process.pid}`) });
  await lab.docker().createConfig({ Name: CONFIG, Labels: TEST_LABEL, Data: b64(`config-${process.pid}`) });
});
// After the environment's deletion (the hooks above): Swarm keeps an object a service uses.
after(removeObjects);

function spec(tag: 'v1' | 'v2', config = CONFIG): Environment {
  const env = bg.envSpec('v1', { replicas: 1 });
  const web = env.spec.services.web!;
  web.image = `${REPO}:${tag}`;
  web.secrets = [{ source: SECRET, target: '/www/secret.txt' }];
  web.configs = [{ source: config, target: '/www/config.txt' }];
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

test('a config that does not exist: SwarmObjectMissing names it, nothing is created', async () => {
  await bg.store.apply(spec('v1', `${CONFIG}-missing`));
  const condition = await bg.until('SwarmObjectMissing', async () => (await bg.status())?.conditions.find((c) => c.type === 'SwarmObjectMissing' && c.status === 'True'), 30_000, 250);
  assert.equal(condition.message, `web: config "${CONFIG}-missing" not found (docker config create ${CONFIG}-missing …)`);
  assert.deepEqual(await bg.servicesOfEnv(), []);
});

test('with the login, a node that is not logged in pulls from the registry with auth; qa serves v1, its secret and its config', async () => {
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
  const endpoint = (await bg.status())?.services.web?.endpoints[0];
  for (const [file, body] of [['secret.txt', `secret-${process.pid}`], ['config.txt', `config-${process.pid}`]]) {
    const res = await fetch(`http://${endpoint}/${file}`);
    assert.equal(`${res.status} ${(await res.text()).trim()}`, `200 ${body}`, `${file} at its target`);
  }
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
