import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyState, parseState, serializeState, addOnce, sameRule } from '../../src/lab/state.js';
import { mountsUnder } from '../../src/lab/statedir.js';

test('state round-trips through JSON', () => {
  const s = emptyState('/s', 3, 1, new Date('2026-01-01T00:00:00Z'));
  s.processes.etcd = { pid: 42, argv: ['etcd'], log: '/s/etcd/etcd.log', marker: '/s/etcd/data', startedAt: 'x' };
  s.netns.push('berth-lab-1');
  s.iptables.push(['FORWARD', '-i', 'berth0']);
  assert.deepEqual(parseState(serializeState(s)), s);
});

test('files defaults to [] for older records', () => {
  const s = emptyState('/s', 1, 1) as Partial<ReturnType<typeof emptyState>>;
  delete s.files;
  assert.deepEqual(parseState(JSON.stringify(s)).files, []);
});

test('bad records are refused with the file and field named', () => {
  assert.throws(() => parseState('{', '/s/state.json'), /\/s\/state\.json: not JSON/);
  assert.throws(() => parseState(JSON.stringify({ version: 2 }), '/s/state.json'), /\/s\/state\.json: invalid lab state: version/);
  const s = emptyState('/s', 1, 1);
  (s.processes as Record<string, unknown>).etcd = { pid: -1 };
  assert.throws(() => parseState(JSON.stringify(s)), /processes\.etcd\.pid/);
});

test('addOnce keeps lists free of duplicates', () => {
  const rules: string[][] = [];
  addOnce(rules, ['A', 'b'], sameRule);
  addOnce(rules, ['A', 'b'], sameRule);
  assert.equal(rules.length, 1);
});

test('mountsUnder finds mounts under the state dir, deepest first', () => {
  const info = [
    '22 1 0:21 / / rw - ext4 /dev/root rw',
    '30 22 0:4 net:[1] /s/nodes/lab-1/exec/netns/ingress_sbox rw - nsfs nsfs rw',
    '31 22 0:4 net:[2] /s/nodes/lab-1/exec/netns/1-abc rw - nsfs nsfs rw',
    '32 22 0:30 / /s/nodes/lab-1/exec rw - tmpfs tmpfs rw',
    '33 22 0:30 / /srv rw - tmpfs tmpfs rw',
  ].join('\n');
  assert.deepEqual(mountsUnder(info, '/s'), ['/s/nodes/lab-1/exec/netns/ingress_sbox', '/s/nodes/lab-1/exec/netns/1-abc', '/s/nodes/lab-1/exec']);
});
