/** Swarm secrets and configs named in a service spec: schema, Docker spec, ids, and the environment held while one is missing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type Dockerode from 'dockerode';
import { pino } from 'pino';
import { environmentSchema, groupSchema, type Environment } from '../../src/api/index.js';
import { EnvironmentReconciler } from '../../src/reconcile/reconciler-environment.js';
import type { SwarmObjectKind, SwarmObjectLookup } from '../../src/swarm/api.js';
import { SwarmObjectMissingError, withObjectIds } from '../../src/swarm/object-ids.js';
import { buildServiceSpec } from '../../src/swarm/service-spec.js';
import { LABEL_SPEC_HASH } from '../../src/swarm/labels.js';
import { FakeStore } from '../support/fake-store.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';

const log = pino({ level: 'silent' });

function env(web: Record<string, unknown> = {}): Environment {
  return environmentSchema.parse({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: 'qa', generation: 1 },
    spec: { group: 'g', nodes: 1, services: { web: { image: '10.77.0.1:5000/web:v1', ...web } } },
  });
}

/** Secrets and configs by kind and name; counts the look-ups. */
class FakeObjects implements SwarmObjectLookup {
  readonly objects = new Map<string, string>();
  lookups = 0;

  async findObjectIds(kind: SwarmObjectKind, names: string[]): Promise<Map<string, string>> {
    this.lookups++;
    return new Map(names.flatMap((n) => (this.objects.has(`${kind}/${n}`) ? [[n, this.objects.get(`${kind}/${n}`)!] as [string, string]] : [])));
  }
}

const docker = (e: Environment) => buildServiceSpec('qa', 'web', e.spec.services.web!);
const container = (spec: ReturnType<typeof docker>) => (spec.TaskTemplate as { ContainerSpec: Dockerode.ContainerSpec }).ContainerSpec;

test('schema: names as docker secret create takes them; targets without ..; no two mounts on one path', () => {
  assert.ok(env({ secrets: [{ source: 'db.password', target: 'db' }], configs: [{ source: 'app-conf', target: '/etc/app.conf' }] }));
  const fails = (web: Record<string, unknown>, message: RegExp) => assert.throws(() => env(web), message);
  fails({ secrets: [{ source: '-bad' }] }, /Swarm secret or config name/);
  fails({ secrets: [{ source: 'a', target: '../etc/passwd' }] }, /without '\.\.'/);
  fails({ secrets: [{ source: 'a', value: 'x' }] }, /Unrecognized key/);
  fails({ secrets: [{ source: 'a' }, { source: 'b', target: '/run/secrets/a' }] }, /two secrets or configs are mounted at \/run\/secrets\/a/);
  fails({ secrets: [{ source: 'a', target: '/x' }], configs: [{ source: 'b', target: 'x' }] }, /mounted at \/x/);
});

test('Docker spec: mounted by name at their paths, root-owned and read-only; the hash covers them and leaves specs without them as they were', () => {
  const plain = docker(env());
  assert.equal(container(plain).Secrets, undefined);
  assert.equal(container(plain).Configs, undefined);
  assert.equal(docker(env({ secrets: [], configs: [] })).Labels![LABEL_SPEC_HASH], plain.Labels![LABEL_SPEC_HASH], 'empty lists: the same hash as none');

  const mounted = docker(env({ secrets: [{ source: 'pw' }, { source: 'tls', target: '/etc/tls.key' }], configs: [{ source: 'conf' }, { source: 'site', target: 'www/site.conf' }] }));
  const file = (name: string) => ({ Name: name, UID: '0', GID: '0', Mode: 0o444 });
  assert.deepEqual(container(mounted).Secrets, [
    { SecretName: 'pw', File: file('/run/secrets/pw') },
    { SecretName: 'tls', File: file('/etc/tls.key') },
  ]);
  assert.deepEqual(container(mounted).Configs, [
    { ConfigName: 'conf', File: file('/conf') },
    { ConfigName: 'site', File: file('/www/site.conf') },
  ]);
  const hashes = new Set(
    [env({ secrets: [{ source: 'pw' }] }), env({ secrets: [{ source: 'pw2' }] }), env({ secrets: [{ source: 'pw', target: 'other' }] }), env({ configs: [{ source: 'pw' }] }), env()].map((e) => docker(e).Labels![LABEL_SPEC_HASH]),
  );
  assert.equal(hashes.size, 5, 'a different name, target or kind is a different version');
});

test('on write the Docker adapter adds each id beside its name; a missing one is named, and nothing is asked for a spec without any', async () => {
  const objects = new FakeObjects();
  objects.objects.set('secret/pw', 'sid1');
  objects.objects.set('config/conf', 'cid1');
  const filled = await withObjectIds('createService', docker(env({ secrets: [{ source: 'pw' }], configs: [{ source: 'conf' }] })), objects);
  assert.deepEqual(container(filled).Secrets?.map((s) => [s.SecretName, s.SecretID]), [['pw', 'sid1']]);
  assert.deepEqual(container(filled).Configs?.map((c) => [c.ConfigName, c.ConfigID]), [['conf', 'cid1']]);

  await assert.rejects(withObjectIds('updateService', docker(env({ secrets: [{ source: 'pw' }, { source: 'gone' }], configs: [{ source: 'nope' }] })), objects), (e: unknown) =>
    e instanceof SwarmObjectMissingError && !e.recoverable && e.message === 'updateService: secret "gone" not found; config "nope" not found');
  const before = objects.lookups;
  const plain = docker(env());
  assert.equal(await withObjectIds('createService', plain, objects), plain);
  assert.equal(objects.lookups, before);
});

test('a missing secret holds the environment (SwarmObjectMissing, nothing created); once it exists the services roll; Docker is asked again only when the references change', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  const objects = new FakeObjects();
  const r = new EnvironmentReconciler({ swarm, swarmObjects: objects, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, now: () => new Date('2030-01-01T00:00:00Z') });
  objects.objects.set('config/conf', 'cid1');
  store.envs.set('qa', env({ secrets: [{ source: 'pw' }], configs: [{ source: 'conf' }] }));

  const held = await r.reconcile('qa');
  const st = store.envStatus.get('qa')!;
  assert.equal(st.phase, 'Degraded');
  const condition = st.conditions.find((c) => c.type === 'SwarmObjectMissing');
  assert.equal(condition?.message, 'web: secret "pw" not found (docker secret create pw …)');
  assert.equal(st.observedGeneration, 0, 'berth has not acted on this spec');
  assert.deepEqual(swarm.calls.filter((c) => !c.startsWith('list') && !c.startsWith('inspect')), [], 'nothing written to the Swarm');
  assert.ok(held.requeueAfterMs && held.requeueAfterMs > 0, 'looked at again later');

  objects.objects.set('secret/pw', 'sid1');
  await r.reconcile('qa');
  assert.ok(swarm.calls.includes('createService'));
  assert.equal(store.envStatus.get('qa')!.conditions.find((c) => c.type === 'SwarmObjectMissing'), undefined, 'the condition goes once they exist');
  const lookups = objects.lookups;
  for (let i = 0; i < 3; i++) await r.reconcile('qa');
  assert.equal(objects.lookups, lookups, 'the same references: not looked up again');

  store.envs.set('qa', env({ secrets: [{ source: 'pw', target: 'db' }], configs: [{ source: 'conf' }] }));
  await r.reconcile('qa');
  assert.equal(objects.lookups, lookups, 'a new target, the same names: not looked up again');
  store.envs.set('qa', env({ secrets: [{ source: 'pw2' }], configs: [{ source: 'conf' }] }));
  await r.reconcile('qa');
  assert.equal(objects.lookups, lookups + 2, 'a new name: one look-up per kind');
  assert.match(store.envStatus.get('qa')!.conditions.find((c) => c.type === 'SwarmObjectMissing')?.message ?? '', /secret "pw2" not found/);
});

test('a secret gone between the check and the write: the reconcile fails, and the next pass checks again and reports it', async () => {
  /** Docker's adapter, as it answers a write that names a secret Swarm no longer has. */
  class GoneOnWrite extends FakeSwarm {
    override async updateService(): Promise<void> {
      throw new SwarmObjectMissingError('updateService', [{ kind: 'secret', name: 'pw' }]);
    }
  }
  const swarm = new GoneOnWrite([fakeNode(1)]);
  const store = new FakeStore();
  store.groups.set('g', groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' } } }));
  const objects = new FakeObjects();
  objects.objects.set('secret/pw', 'sid1');
  const r = new EnvironmentReconciler({ swarm, swarmObjects: objects, installation: 'inst-a', gc: store, resources: store, status: store, routes: store, promotions: store, log, now: () => new Date('2030-01-01T00:00:00Z') });
  store.envs.set('qa', env({ secrets: [{ source: 'pw' }] }));
  await r.reconcile('qa');
  await r.reconcile('qa');
  objects.objects.delete('secret/pw');
  store.envs.set('qa', env({ image: '10.77.0.1:5000/web:v2', secrets: [{ source: 'pw' }] }));
  await assert.rejects(r.reconcile('qa'), SwarmObjectMissingError);
  await r.reconcile('qa');
  assert.match(store.envStatus.get('qa')!.conditions.find((c) => c.type === 'SwarmObjectMissing')?.message ?? '', /secret "pw" not found/);
});
