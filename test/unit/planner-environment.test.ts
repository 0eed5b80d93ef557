import assert from 'node:assert/strict';
import { test } from 'node:test';
import { environmentSchema, groupSchema, type Environment, type EnvironmentGroup } from '../../src/api/index.js';
import { planEnvironment, planEnvironmentRemoval, type Action } from '../../src/reconcile/planner/index.js';
import { InstallationSwarm } from '../../src/swarm/installation-swarm.js';
import { LABEL_ENV, LABEL_SPEC_HASH } from '../../src/swarm/labels.js';
import type { SwarmSnapshot } from '../../src/swarm/model.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';
import { legacySpecHash } from '../support/legacy-spec-hash.js';

function group(spare = 0): EnvironmentGroup {
  return groupSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'g' }, spec: { nodeSelector: { pool: 'lab' }, spare } });
}

function env(name: string, nodes: number, services: Record<string, unknown> = {}): Environment {
  return environmentSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name }, spec: { group: 'g', nodes, services } });
}

const web = (replicas = 2, image = '10.77.0.1:5000/web:v1') => ({ image, replicas, ports: [{ target: 8080 }], placement: { maxPerNode: 1 } });

const OWN = { installation: 'inst-a', adoptUnlabelled: true };

/** Applies a plan to the fake Swarm, as the reconciler would (through the installation's fence). */
async function apply(fake: FakeSwarm, actions: Action[]): Promise<void> {
  const swarm = new InstallationSwarm(fake, OWN.installation);
  for (const a of actions) {
    if (a.kind === 'claimNode' || a.kind === 'adoptNode' || a.kind === 'releaseNode') await swarm.updateNodeLabels(a.nodeId, a.version, a.labels);
    else if (a.kind === 'createService') await swarm.createService(a.spec);
    else if (a.kind === 'updateService') await swarm.updateService(a.id, a.version, a.spec);
    else await swarm.removeService(a.id);
  }
}

async function converge(swarm: FakeSwarm, e: Environment, g = group()) {
  const plan = planEnvironment(e, g, swarm.snapshot(), OWN);
  await apply(swarm, plan.actions);
  return plan;
}

const held = (s: SwarmSnapshot, name: string) => s.nodes.claimedBy(name).map((n) => n.hostname).sort();
const kinds = (actions: Action[]) => actions.map((a) => a.kind);

test('claims 2 of 3 pool nodes, in different zones, and creates the services', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  const plan = await converge(swarm, env('qa', 2, { web: web() }));
  assert.equal(plan.nodes.missing, 0);
  assert.deepEqual(kinds(plan.actions), ['claimNode', 'claimNode', 'createService']);
  assert.equal(held(swarm.snapshot(), 'qa').length, 2);
  const again = planEnvironment(env('qa', 2, { web: web() }), group(), swarm.snapshot(), OWN);
  assert.deepEqual(again.actions, [], 'converged: a second pass plans nothing');
});

test('growing to 3 keeps the 2 held and claims the third', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  await converge(swarm, env('qa', 2));
  const before = held(swarm.snapshot(), 'qa');
  const plan = await converge(swarm, env('qa', 3));
  assert.deepEqual(kinds(plan.actions), ['claimNode']);
  const after = held(swarm.snapshot(), 'qa');
  assert.equal(after.length, 3);
  for (const h of before) assert.ok(after.includes(h));
});

test('growing prefers a node in a zone not yet held', async () => {
  const swarm = new FakeSwarm([fakeNode(1, { zone: 'a' }), fakeNode(2, { zone: 'a' }), fakeNode(3, { zone: 'b' })]);
  await converge(swarm, env('qa', 2));
  const h = held(swarm.snapshot(), 'qa');
  assert.equal(h.length, 2);
  assert.ok(h.includes('lab-3'), 'the only zone-b node');
  assert.equal(h.filter((x) => x === 'lab-1' || x === 'lab-2').length, 1, 'and one of zone a');
});

test('shrinking releases the least-loaded node', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  await converge(swarm, env('qa', 3, { web: web(2) }));
  // tasks land on lab-1 and lab-2 (the fake fills nodes in order); lab-3 runs nothing
  const plan = planEnvironment(env('qa', 2, { web: web(2) }), group(), swarm.snapshot(), OWN);
  assert.deepEqual(plan.actions.map((a) => (a.kind === 'releaseNode' ? a.hostname : a.kind)), ['lab-3']);
});

test('two environments never share a node; a third that does not fit is short, and fits once another goes', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  await converge(swarm, env('a', 1));
  await converge(swarm, env('b', 2));
  const s = swarm.snapshot();
  const a = held(s, 'a');
  const b = held(s, 'b');
  assert.equal(a.length, 1);
  assert.equal(b.length, 2);
  assert.ok(!a.some((h) => b.includes(h)));
  const c = await converge(swarm, env('c', 1));
  assert.equal(c.nodes.missing, 1);
  assert.equal(held(swarm.snapshot(), 'c').length, 0);
  assert.deepEqual(held(swarm.snapshot(), 'a'), a, 'the short env took nothing from a');

  await apply(swarm, planEnvironmentRemoval('a', swarm.snapshot(), OWN));
  const c2 = await converge(swarm, env('c', 1));
  assert.equal(c2.nodes.missing, 0);
  assert.deepEqual(held(swarm.snapshot(), 'c'), a);
});

test('spare nodes are never handed out', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  const plan = await converge(swarm, env('qa', 3), group(1));
  assert.equal(plan.nodes.held.length, 2);
  assert.equal(plan.nodes.missing, 1);
});

test('a Down node is released and replaced (from the spare headroom)', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  await converge(swarm, env('qa', 2), group(1));
  const [lost, keptHost] = held(swarm.snapshot(), 'qa');
  const spare = ['lab-1', 'lab-2', 'lab-3'].find((h) => h !== lost && h !== keptHost)!;
  swarm.nodes.find((n) => n.hostname === lost)!.state = 'down';
  const plan = await converge(swarm, env('qa', 2), group(1));
  assert.deepEqual(plan.actions.map((a) => `${a.kind} ${'hostname' in a ? a.hostname : ''}`).sort(), [
    `claimNode ${spare}`,
    `releaseNode ${lost}`,
  ]);
  assert.deepEqual(held(swarm.snapshot(), 'qa'), [keptHost, spare].sort());
  assert.equal(plan.nodes.missing, 0);
});

test('a drained node is released too', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  await converge(swarm, env('qa', 1));
  const [h] = held(swarm.snapshot(), 'qa');
  swarm.nodes.find((n) => n.hostname === h)!.availability = 'drain';
  await converge(swarm, env('qa', 1));
  assert.notDeepEqual(held(swarm.snapshot(), 'qa'), [h]);
});

test('replicas changed by hand are reverted', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2)]);
  await converge(swarm, env('qa', 2, { web: web(2) }));
  swarm.scaleByHand('qa_web', 5);
  const plan = planEnvironment(env('qa', 2, { web: web(2) }), group(), swarm.snapshot(), OWN);
  assert.equal(plan.actions.length, 1);
  const a = plan.actions[0]!;
  assert.ok(a.kind === 'updateService' && a.reason === 'replicas-drifted');
});

test('a resized spec is an in-place update of the same version', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  await converge(swarm, env('qa', 3, { web: web(2) }));
  const hash = swarm.services[0]!.labels[LABEL_SPEC_HASH];
  const plan = planEnvironment(env('qa', 3, { web: web(3) }), group(), swarm.snapshot(), OWN);
  assert.equal(plan.actions.length, 1);
  const a = plan.actions[0]!;
  assert.ok(a.kind === 'updateService' && a.reason === 'replicas-drifted');
  assert.equal(a.spec.Labels![LABEL_SPEC_HASH], hash);
  assert.equal(a.spec.Mode?.Replicated?.Replicas, 3);
});

test('upgrade: a service labelled by an older berth (replicas in the hash) is not updated', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2)]);
  await converge(swarm, env('qa', 2, { web: web(2) }));
  const s = swarm.services[0]!;
  s.labels[LABEL_SPEC_HASH] = legacySpecHash(s.spec);
  assert.deepEqual(planEnvironment(env('qa', 2, { web: web(2) }), group(), swarm.snapshot(), OWN).actions, []);
  const resized = planEnvironment(env('qa', 2, { web: web(1) }), group(), swarm.snapshot(), OWN).actions;
  assert.ok(resized.length === 1 && resized[0]!.kind === 'updateService' && resized[0]!.reason === 'replicas-drifted', 'a resize relabels it with the new hash');
});

test('tampered berth labels are restored', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  await converge(swarm, env('qa', 1, { web: web(1) }));
  swarm.services[0]!.labels['berth.service'] = 'web';
  swarm.services[0]!.labels['berth.color'] = 'green';
  const plan = planEnvironment(env('qa', 1, { web: web(1) }), group(), swarm.snapshot(), OWN);
  assert.ok(plan.actions[0]?.kind === 'updateService' && plan.actions[0].reason === 'labels-tampered');
});

test('a service berth does not own is never touched, even with an env-like name', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  swarm.addForeignService('qa_tools', { owner: 'someone' });
  await converge(swarm, env('qa', 1, { web: web(1) }));
  assert.ok(swarm.services.some((s) => s.name === 'qa_tools'));
  const removal = planEnvironmentRemoval('qa', swarm.snapshot(), OWN);
  assert.ok(!removal.some((a) => a.kind === 'removeService' && a.name === 'qa_tools'));
});

test('an owned service no longer in the spec is removed', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  await converge(swarm, env('qa', 1, { web: web(1), api: web(1) }));
  const plan = planEnvironment(env('qa', 1, { web: web(1) }), group(), swarm.snapshot(), OWN);
  assert.deepEqual(plan.actions.map((a) => `${a.kind} ${'name' in a ? a.name : ''}`), ['removeService qa_api']);
});

test('a deleted environment removes its services and node labels, and nothing of others', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  await converge(swarm, env('qa', 2, { web: web(2) }));
  await converge(swarm, env('other', 1, { web: web(1) }));
  const actions = planEnvironmentRemoval('qa', swarm.snapshot(), OWN);
  assert.deepEqual(kinds(actions), ['removeService', 'releaseNode', 'releaseNode']);
  await apply(swarm, actions);
  const s = swarm.snapshot();
  assert.deepEqual(held(s, 'qa'), []);
  assert.deepEqual(s.services.map((x) => x.name), ['other_web']);
  assert.equal(held(s, 'other').length, 1);
  assert.equal([...s.nodes.values()].every((n) => n.labels.pool === 'lab'), true, 'other labels kept');
});

test('a spec change updates only the touched service', async () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2)]);
  await converge(swarm, env('qa', 2, { web: web(1), api: web(1) }));
  const hashes = Object.fromEntries(swarm.services.map((s) => [s.name, s.labels[LABEL_SPEC_HASH]]));
  const plan = planEnvironment(env('qa', 2, { web: web(1, '10.77.0.1:5000/web:v2'), api: web(1) }), group(), swarm.snapshot(), OWN);
  assert.equal(plan.actions.length, 1);
  const a = plan.actions[0]!;
  assert.ok(a.kind === 'updateService' && a.name === 'qa_web' && a.reason === 'spec-changed');
  await apply(swarm, plan.actions);
  assert.notEqual(swarm.services.find((s) => s.name === 'qa_web')!.labels[LABEL_SPEC_HASH], hashes.qa_web);
  assert.equal(swarm.services.find((s) => s.name === 'qa_api')!.labels[LABEL_SPEC_HASH], hashes.qa_api);
});

test('a duplicate service (controller killed mid-create) is removed, the oldest kept', async () => {
  const swarm = new FakeSwarm([fakeNode(1)]);
  await converge(swarm, env('qa', 1, { web: web(1) }));
  const first = swarm.services[0]!;
  swarm.services.push({ ...structuredClone(first), id: 'svc-dup', name: 'qa_web_copy', createdAt: '2999-01-01T00:00:00Z' });
  const plan = planEnvironment(env('qa', 1, { web: web(1) }), group(), swarm.snapshot(), OWN);
  assert.deepEqual(plan.actions.map((a) => `${a.kind} ${'id' in a ? a.id : ''}`), ['removeService svc-dup']);
});

test('a node whose claim by another environment is on its way is neither taken nor counted free', () => {
  const swarm = new FakeSwarm([fakeNode(1), fakeNode(2), fakeNode(3)]);
  const snap = swarm.snapshot();
  const first = planEnvironment(env('qa', 2), group(), snap, OWN);
  const claimed = first.actions.flatMap((a) => (a.kind === 'claimNode' ? [a.nodeId] : []));
  assert.equal(claimed.length, 2);
  for (const id of claimed) snap.nodes.assumeClaim(id, 'qa');
  const other = planEnvironment(env('dev', 2), group(), snap, OWN);
  const taken = other.actions.flatMap((a) => (a.kind === 'claimNode' ? [a.nodeId] : []));
  assert.equal(taken.length, 1, 'only the third node is left');
  assert.ok(!claimed.includes(taken[0]!));
  assert.equal(other.nodes.missing, 1);
  const withSpare = planEnvironment(env('dev', 1), group(1), snap, OWN);
  assert.deepEqual(kinds(withSpare.actions), [], 'the spare node is kept: the assumed claims count as held');
  const own = planEnvironment(env('qa', 2), group(), snap, OWN);
  assert.equal(own.actions.filter((a) => a.kind === 'claimNode').length, 2, 'its own assumed claims are still there for it to make');
  snap.nodes.forgetAssumed(claimed[0]!);
  assert.equal(planEnvironment(env('dev', 2), group(), snap, OWN).actions.filter((a) => a.kind === 'claimNode').length, 2);
});
