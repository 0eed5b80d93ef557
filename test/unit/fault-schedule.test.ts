import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prng, seedFrom } from '../fault/prng.js';
import { KILL_WINDOW_MS, OPERATIONS, killSchedule, pauseSchedule } from '../fault/schedule.js';
import { INITIAL, updatesAllowed } from '../fault/spec.js';
import { berthUpdates } from '../fault/suites.js';

test('one seed, one schedule: a failing seed replays the same points', () => {
  assert.deepEqual(killSchedule(42, 30, INITIAL), killSchedule(42, 30, INITIAL));
  assert.notDeepEqual(killSchedule(42, 30, INITIAL), killSchedule(43, 30, INITIAL));
  assert.deepEqual(killSchedule(42, 10, INITIAL), killSchedule(42, 30, INITIAL).slice(0, 10), 'a longer run starts with the shorter one');
  assert.deepEqual(pauseSchedule(7, 5, INITIAL), pauseSchedule(7, 5, INITIAL));
});

test('every operation gets its share, each kill inside its window', () => {
  const points = killSchedule(1, 100, INITIAL);
  for (const op of OPERATIONS) assert.equal(points.filter((p) => p.operation === op).length, 25, op);
  for (const p of points) assert.ok(p.killAfterMs >= 0 && p.killAfterMs <= KILL_WINDOW_MS[p.operation]);
  for (const p of points.filter((x) => x.operation === 'bluegreen')) {
    const before = points[p.index - 2]?.shape ?? INITIAL;
    assert.notEqual(p.shape.web.version, before.web.version, 'a blue-green point changes the image');
  }
});

test('pauses both shorter and longer than the 10 s lease occur', () => {
  const rounds = pauseSchedule(3, 40, INITIAL);
  assert.ok(rounds.some((r) => r.stopForMs < 10_000) && rounds.some((r) => r.stopForMs > 10_000));
});

test('updates allowed: per changed field, nothing for no change', () => {
  assert.deepEqual(updatesAllowed(INITIAL, INITIAL), { api: 0, web: 0 });
  assert.deepEqual(updatesAllowed(INITIAL, { ...INITIAL, web: { ...INITIAL.web, version: 'v2' } }), { api: 0, web: 2 });
  assert.deepEqual(updatesAllowed(INITIAL, { ...INITIAL, api: { version: 'v2', replicas: 2 } }), { api: 1, web: 0 });
  // Growing 1 → 2 nodes: api's one task stays; web's 2 + 0 moves one task (one replica more and back).
  assert.deepEqual(updatesAllowed({ ...INITIAL, nodes: 1 }, INITIAL), { api: 0, web: 2 });
});

test('the PRNG is uniform enough and seeds parse', () => {
  const rng = new Prng(9);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[rng.int(0, 3)]!++;
  for (const c of counts) assert.ok(c > 900 && c < 1100, String(counts));
  assert.equal(seedFrom('123'), 123);
  assert.throws(() => seedFrom('x'));
});

test("berth's updates are told from Swarm's own update progress and rollback", () => {
  const ev = (attributes: Record<string, string>) => ({ at: 0, name: 'e_api', attributes: { name: 'e_api', ...attributes } });
  const berth = [ev({ 'image.old': 'v1', 'image.new': 'v2' }), ev({ 'replicas.old': '1', 'replicas.new': '2' }), ev({ 'updatestate.old': 'updating', 'updatestate.new': '' })];
  const swarm = [ev({ 'updatestate.new': 'updating' }), ev({ 'image.old': 'v2', 'image.new': 'v1', 'updatestate.old': 'updating', 'updatestate.new': 'rollback_started' }), ev({})];
  assert.deepEqual(berthUpdates([...berth, ...swarm]), berth);
});
