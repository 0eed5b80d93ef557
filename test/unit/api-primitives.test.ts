import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAge, parseDuration } from '../../src/api/duration.js';
import { IMAGE_PATTERN } from '../../src/api/primitives.js';
import { routePort, routeUpstream, setCondition } from '../../src/api/index.js';

test('durations add up their parts', () => {
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('2d'), 172_800_000);
  for (const bad of ['', '10', 's', '1.5h', '-1s', '10 s', '1w']) {
    assert.throws(() => parseDuration(bad), /invalid duration/, bad);
  }
});

test('ages print in the largest readable unit', () => {
  assert.equal(formatAge(45_000), '45s');
  assert.equal(formatAge(12 * 60_000), '12m');
  assert.equal(formatAge(5 * 3_600_000), '5h');
  assert.equal(formatAge(72 * 3_600_000), '3d');
  assert.equal(formatAge(-5), '0s');
});

test('image references follow the distribution grammar', () => {
  const good = [
    'busybox',
    'web:v1',
    '10.77.0.1:5000/web:v2',
    'registry.example.com/team/app:1.2.3',
    'localhost:5000/a/b/c',
    `app@sha256:${'a'.repeat(64)}`,
    'my_app:latest',
  ];
  const bad = ['Web:v1', 'web:', 'web v1', 'web:v1;rm', '/web', 'web//x', `app@sha256:${'a'.repeat(10)}`, 'web:-x'];
  for (const ref of good) assert.match(ref, IMAGE_PATTERN, ref);
  for (const ref of bad) assert.doesNotMatch(ref, IMAGE_PATTERN, ref);
});

test('route defaults: upstream <env>-<service>, port the first target', () => {
  assert.equal(routeUpstream('qa-1', 'api', {}), 'qa-1-api');
  assert.equal(routeUpstream('qa-1', 'api', { route: { upstream: 'shop' } }), 'shop');
  assert.equal(routePort({ ports: [{ target: 8080, protocol: 'tcp' }, { target: 9090, protocol: 'tcp' }] }), 8080);
  assert.equal(routePort({ ports: [{ target: 8080, protocol: 'tcp' }], route: { port: 9090 } }), 9090);
  assert.equal(routePort({ ports: [] }), undefined);
});

test('a condition keeps its transition time until its status changes', () => {
  const t1 = new Date('2026-01-01T00:00:00Z');
  const t2 = new Date('2026-01-01T00:01:00Z');
  const first = setCondition([], { type: 'Ready', status: 'False', reason: 'Starting', message: '' }, t1);
  const same = setCondition(first, { type: 'Ready', status: 'False', reason: 'StillStarting', message: 'x' }, t2);
  assert.equal(same[0]?.lastTransitionTime, t1.toISOString());
  assert.equal(same[0]?.reason, 'StillStarting');
  const flipped = setCondition(same, { type: 'Ready', status: 'True', reason: 'AllReady', message: '' }, t2);
  assert.equal(flipped.length, 1);
  assert.equal(flipped[0]?.lastTransitionTime, t2.toISOString());
});
