/**
 * berth's image on the lab: built offline by `npm run image` on the cached Debian 12 + nginx +
 * node base, pushed to the lab registry; `--help` runs in it, it is not root and has a
 * HEALTHCHECK, and the controller started from it (on lab-1, reaching etcd at
 * BERTH_LAB_ETCD_FROM_NODES, the Docker socket mounted) reconciles an environment to Ready.
 * Keys under /berth-image, names img-*.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseResource } from '../../src/api/resource.js';
import type { Environment, EnvironmentGroup } from '../../src/api/index.js';
import { run, runOk } from '../../src/lab/exec.js';
import { createClient } from '../../src/store/client.js';
import { ResourceStore } from '../../src/store/resources.js';
import { StatusStore } from '../../src/store/status.js';
import { ensureBerthImage } from '../support/berth-image.js';
import { requireLab } from '../support/lab.js';
import { releaseClaims } from '../support/claims.js';
import { until as poll } from '../support/poll.js';

const lab = requireLab();
const PREFIX = '/berth-image';
const etcd = createClient({ endpoints: lab.etcdEndpoints, prefix: PREFIX });
const store = new ResourceStore(etcd);
const statuses = new StatusStore(etcd);
const docker = lab.docker();
const dockerEnv = { ...process.env, DOCKER_HOST: lab.env.DOCKER_HOST };
const CONTAINER = 'berth-image-test-controller';
const GROUP = 'img-g';
const ENV = 'img-a';
let image = '';

const docker$ = (...args: string[]) => runOk('docker', args, { env: dockerEnv, timeoutMs: 120_000 });

const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000) => poll(what, fn, timeoutMs, 500);

async function cleanSlate(): Promise<void> {
  await run('docker', ['rm', '-f', CONTAINER], { env: dockerEnv });
  for (const s of (await docker.listServices()) as Array<{ ID: string; Spec: { Name: string } }>) {
    if (s.Spec.Name.startsWith('img-')) await docker.getService(s.ID).remove();
  }
  await releaseClaims(docker, (env) => env.startsWith('img-'));
  await etcd.etcd.delete().prefix(`${PREFIX}/`).exec();
}

before(async () => {
  await cleanSlate();
  const built = await ensureBerthImage(lab, (s) => console.log(s));
  image = built.ref;
  const size = JSON.parse(await docker$('image', 'inspect', '--format', '{{json .Size}}', image)) as number;
  console.log(`image ${image}: ${(size / 1e6).toFixed(0)} MB; built and pushed in ${built.buildSeconds.toFixed(0)} s (0 = reused)`);
});

after(async () => {
  const logs = await run('docker', ['logs', '--tail', '30', CONTAINER], { env: dockerEnv });
  if (logs.code === 0) console.log(`controller container log (tail):\n${logs.stdout}${logs.stderr}`);
  await store.delete('Environment', ENV).catch(() => undefined);
  await cleanSlate().catch(() => undefined);
  etcd.close();
});

test('the image runs `berth --help`, as a non-root user, with a HEALTHCHECK', async () => {
  const help = await docker$('run', '--rm', image, '--help');
  assert.match(help, /Usage: berth/);
  assert.match(help, /controller/);
  assert.match(help, /proxy/);
  const config = JSON.parse(await docker$('image', 'inspect', '--format', '{{json .Config}}', image)) as {
    User: string;
    Healthcheck?: { Test: string[] };
  };
  assert.notEqual(config.User, '');
  assert.notEqual(config.User, 'root');
  assert.notEqual(config.User, '0');
  assert.ok(config.Healthcheck?.Test.some((a) => a.includes('healthcheck.js')), JSON.stringify(config.Healthcheck));
  const nginx = await run('docker', ['run', '--rm', '--entrypoint', 'nginx', image, '-v'], { env: dockerEnv });
  assert.match(nginx.stderr, /nginx version/);
});

test('the controller from the image reconciles an environment to Ready', async () => {
  const sock = lab.dockerHost;
  await docker$(
    'run', '-d', '--name', CONTAINER, '--network', 'host', '--user', '0',
    '-v', `${sock}:/var/run/docker.sock`,
    '-e', `BERTH_ETCD_ENDPOINTS=${lab.env.BERTH_LAB_ETCD_FROM_NODES}`,
    '-e', `BERTH_PREFIX=${PREFIX}`,
    '-e', `BERTH_INSECURE_REGISTRIES=${lab.registry}`,
    '-e', 'BERTH_HEALTH_URL=http://127.0.0.1:19464/healthz',
    image, 'controller', '--metrics-addr', '127.0.0.1:19464',
  );
  await store.apply(
    parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: GROUP }, spec: { nodeSelector: { pool: 'lab' } } }) as EnvironmentGroup,
  );
  await store.apply(
    parseResource({
      apiVersion: 'berth.dev/v1alpha1',
      kind: 'Environment',
      metadata: { name: ENV },
      spec: { group: GROUP, nodes: 1, services: { web: { image: lab.image('v1'), replicas: 1, ports: [{ target: 8080 }] } } },
    }) as Environment,
  );
  const status = await until('img-a Ready', async () => {
    const s = await statuses.getStatus('Environment', ENV);
    return s?.phase === 'Ready' && s.services.web?.endpoints.length === 1 ? s : undefined;
  });
  const endpoint = status.services.web!.endpoints[0]!;
  const body = await (await fetch(`http://${endpoint}/`, { signal: AbortSignal.timeout(3_000) })).text();
  assert.equal(body.trim(), 'v1');
  const health = await until('container healthy', async () => {
    const h = (await docker$('inspect', '--format', '{{.State.Health.Status}}', CONTAINER)).trim();
    return h === 'healthy' ? h : undefined;
  });
  assert.equal(health, 'healthy');
});
