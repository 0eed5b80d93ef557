import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serviceSpecSchema } from '../../src/api/environment.js';
import { isRecoverable } from '../../src/swarm/retry.js';
import { buildServiceSpec, runsVersion } from '../../src/swarm/service-spec.js';

const spec = (extra: Record<string, unknown> = {}) =>
  serviceSpecSchema.parse({
    image: '10.77.0.1:5000/web:v1',
    replicas: 2,
    command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
    environment: { B: 2, A: 'x' },
    ports: [{ target: 8080 }, { target: 9090, published: 30090 }],
    healthcheck: { test: ['CMD', 'wget', '-q', '-O-', 'http://127.0.0.1:8080/'], interval: '2s', retries: 3 },
    placement: { maxPerNode: 1, spreadBy: 'node.labels.zone', constraints: ['node.labels.disk==ssd'] },
    ...extra,
  });

test('names, labels, placement, ports, healthcheck and update policy', () => {
  const s = buildServiceSpec('qa-1', 'api', spec());
  assert.equal(s.Name, 'qa-1_api');
  assert.equal(s.Labels!['com.docker.stack.namespace'], 'qa-1');
  assert.equal(s.Labels!['berth.env'], 'qa-1');
  assert.equal(s.Labels!['berth.service'], 'api');
  assert.equal(s.Labels!['berth.color'], undefined);
  assert.match(s.Labels!['berth.spec-hash']!, /^[0-9a-f]{16}$/);
  const t = s.TaskTemplate as { ContainerSpec: Record<string, any>; Placement: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.deepEqual(t.ContainerSpec.Args, ['httpd', '-f', '-p', '8080', '-h', '/www']);
  assert.equal(t.ContainerSpec.Command, undefined, 'command replaces CMD, not the entrypoint');
  assert.deepEqual(t.ContainerSpec.Env, ['A=x', 'B=2']);
  assert.equal(t.ContainerSpec.HealthCheck.Interval, 2_000_000_000);
  assert.deepEqual(t.Placement.Constraints, ['node.labels.berth.env==qa-1', 'node.labels.disk==ssd']);
  assert.equal(t.Placement.MaxReplicas, 1);
  assert.deepEqual(t.Placement.Preferences, [{ Spread: { SpreadDescriptor: 'node.labels.zone' } }]);
  assert.deepEqual(s.EndpointSpec!.Ports, [
    { Protocol: 'tcp', TargetPort: 8080, PublishMode: 'host' },
    { Protocol: 'tcp', TargetPort: 9090, PublishedPort: 30090, PublishMode: 'host' },
  ]);
  assert.equal(s.Mode!.Replicated!.Replicas, 2);
  assert.equal(s.UpdateConfig!.Order, 'start-first');
  assert.equal(s.UpdateConfig!.Parallelism, 1);
  assert.equal(s.UpdateConfig!.FailureAction, 'rollback');
});

test('blue-green colour in name and label', () => {
  const s = buildServiceSpec('qa-1', 'api', spec(), 'green');
  assert.equal(s.Name, 'qa-1_api_green');
  assert.equal(s.Labels!['berth.color'], 'green');
});

test('the spec-hash is stable and changes with what determines the Swarm spec', () => {
  const h = (x: ReturnType<typeof spec>, env = 'qa-1') => buildServiceSpec(env, 'api', x).Labels!['berth.spec-hash'];
  assert.equal(h(spec()), h(spec()));
  assert.equal(h(spec({ environment: { A: 'x', B: 2 } })), h(spec()), 'key order does not matter');
  assert.notEqual(h(spec({ image: '10.77.0.1:5000/web:v2' })), h(spec()));
  assert.equal(h(spec({ replicas: 3 })), h(spec()), 'replicas are not part of the version: resizing is not a release');
  assert.notEqual(h(spec(), 'qa-2'), h(spec()));
  assert.equal(h(spec({ strategy: { type: 'rolling', drain: '30s' } })), h(spec()), 'drain does not change the Swarm spec');
});

test('a label an older berth wrote (replica count in the hash) is the same version at that count, and only at it', () => {
  // Written by the previous release for this spec at 2 replicas (blue, and the rolling service).
  const small = serviceSpecSchema.parse({ image: '10.77.0.1:5000/web:v1', replicas: 2, ports: [{ target: 8080 }], strategy: { type: 'blueGreen' } });
  const cases = [
    { label: '8465ce155353dbb9', desired: buildServiceSpec('qa-1', 'api', small, 'blue') },
    { label: '5aaf17f86fdc0195', desired: buildServiceSpec('qa-1', 'api', small) },
  ];
  for (const { label, desired } of cases) {
    assert.notEqual(desired.Labels!['berth.spec-hash'], label, 'the hash itself changed');
    const observed = (replicas: number) => ({ labels: { 'berth.spec-hash': label }, replicas });
    assert.equal(runsVersion(observed(2), desired), true);
    assert.equal(runsVersion(observed(3), desired), false, 'at another count the old label cannot be told from another version');
    assert.equal(runsVersion(observed(2), buildServiceSpec('qa-1', 'api', { ...small, image: '10.77.0.1:5000/web:v2' }, 'blue')), false);
  }
  assert.equal(runsVersion({ labels: cases[0]!.desired.Labels!, replicas: 7 }, cases[0]!.desired), true, 'the new hash matches at any count');
});

test('retry only connection errors and 5xx', () => {
  assert.equal(isRecoverable(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), true);
  assert.equal(isRecoverable(Object.assign(new Error('x'), { statusCode: 503 })), true);
  assert.equal(isRecoverable(Object.assign(new Error('x'), { statusCode: 409 })), false);
  assert.equal(isRecoverable(Object.assign(new Error('x'), { statusCode: 404 })), false);
  assert.equal(isRecoverable(new Error('bad')), false);
});

test('a frozen berth spec (the informer\'s) is built once per environment, service and colour; another is built afresh', () => {
  const frozen = Object.freeze(spec({ image: 'web:v1' }));
  const first = buildServiceSpec('qa-1', 'web', frozen);
  assert.equal(buildServiceSpec('qa-1', 'web', frozen), first, 'the same object again');
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first.TaskTemplate), 'what is shared cannot change');
  assert.notEqual(buildServiceSpec('qa-2', 'web', frozen), first);
  assert.equal(buildServiceSpec('qa-1', 'web', frozen, 'blue').Name, 'qa-1_web_blue');
  const open = spec({ image: 'web:v1' });
  const built = buildServiceSpec('qa-1', 'web', open);
  assert.deepEqual(built, first);
  open.image = 'web:v2';
  assert.equal((buildServiceSpec('qa-1', 'web', open).TaskTemplate as { ContainerSpec: { Image: string } }).ContainerSpec.Image, 'web:v2', 'a spec that can change is not remembered');
});
