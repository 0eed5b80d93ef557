import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EVENT_FILTERS, EventBus, eventLine, eventMatches, parseEventTime, type DockerEvent } from '../../src/sim/events.js';
import { parseFilters } from '../../src/sim/filters.js';

const ev = (Type: string, Action: string, ID: string, Attributes: Record<string, string>, scope: 'local' | 'swarm' = 'swarm'): DockerEvent => ({
  Type, Action, Actor: { ID, Attributes }, scope, time: 1_700_000_000, timeNano: 1_700_000_000_123_456_789n,
});
const f = (json: unknown) => parseFilters(JSON.stringify(json), EVENT_FILTERS);

test('filters: type, event, scope, service/node by id or name prefix, label k and k=v; list and set forms alike', () => {
  const svc = ev('service', 'update', 'svc123', { name: 'qa-1_api' });
  const node = ev('node', 'update', 'node9', { name: 'sim-9' });
  const ctr = ev('container', 'start', 'c0ffee', { name: 'qa-1_api.1.x', 'berth.env': 'qa-1' }, 'local');
  assert.equal(eventMatches(f({ type: ['service', 'node'] }), svc), true);
  assert.equal(eventMatches(f({ type: { node: true } }), svc), false, 'the CLI\'s set form');
  assert.equal(eventMatches(f({ type: ['node'] }), node), true);
  assert.equal(eventMatches(f({ event: ['create'] }), svc), false);
  assert.equal(eventMatches(f({ scope: ['local'] }), ctr), true);
  assert.equal(eventMatches(f({ scope: ['local'] }), svc), false);
  assert.equal(eventMatches(f({ service: ['qa-1'] }), svc), true, 'name prefix');
  assert.equal(eventMatches(f({ service: ['svc1'] }), svc), true, 'id prefix');
  assert.equal(eventMatches(f({ service: ['qa-2'] }), svc), false);
  assert.equal(eventMatches(f({ service: ['qa-1'] }), node), false, 'a service filter excludes other types');
  assert.equal(eventMatches(f({ label: ['berth.env'] }), ctr), true);
  assert.equal(eventMatches(f({ label: ['berth.env=qa-1', 'name=qa-1_api.1.x'] }), ctr), true);
  assert.equal(eventMatches(f({ label: ['berth.env=qa-2'] }), ctr), false);
  assert.throws(() => f({ colour: ['red'] }), /invalid filter 'colour'/);
});

test('a subscriber with since gets the kept events from then, then live ones; only the last N are kept', () => {
  const bus = new EventBus(3);
  const stamps = [1, 2, 3, 4].map((s) => bus.stamp(s * 1000));
  stamps.forEach((s, i) => bus.publish({ ...ev('service', 'update', `s${i}`, {}), ...s }));
  const live: string[] = [];
  const sub = bus.subscribe((e) => live.push(e.Actor.ID), stamps[2]!.timeNano);
  assert.deepEqual(sub.replay.map((e) => e.Actor.ID), ['s2', 's3']);
  assert.deepEqual(bus.subscribe(() => {}, 0n).replay.map((e) => e.Actor.ID), ['s1', 's2', 's3'], 's0 fell out of the buffer');
  bus.publish({ ...ev('node', 'update', 'n1', {}), ...bus.stamp(5000) });
  sub.unsubscribe();
  bus.publish({ ...ev('node', 'update', 'n2', {}), ...bus.stamp(6000) });
  assert.deepEqual(live, ['n1']);
});

test('time stamps never repeat, and timeNano is written exactly', () => {
  const bus = new EventBus();
  const a = bus.stamp(1_700_000_000_000);
  const b = bus.stamp(1_700_000_000_000);
  assert.equal(b.timeNano, a.timeNano + 1n);
  assert.equal(a.time, 1_700_000_000);
  const line = eventLine(ev('node', 'update', 'n', { name: 'sim-1' }));
  assert.match(line, /"scope":"swarm","time":1700000000,"timeNano":1700000000123456789}\n$/);
  assert.equal(parseEventTime('1700000000.5'), 1_700_000_000_500_000_000n);
  assert.equal(parseEventTime('1700000000'), 1_700_000_000_000_000_000n);
  assert.throws(() => parseEventTime('yesterday'));
});
