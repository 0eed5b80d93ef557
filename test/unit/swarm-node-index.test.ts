import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LABEL_ENV } from '../../src/swarm/labels.js';
import type { ObservedNode } from '../../src/swarm/model.js';
import { NodeTable } from '../../src/swarm/node-index.js';

const node = (id: string, env?: string): ObservedNode => ({
  id,
  hostname: `h-${id}`,
  addr: '10.0.0.1',
  role: 'worker',
  state: 'ready',
  availability: 'active',
  version: 1,
  labels: env ? { pool: 'p', [LABEL_ENV]: env } : { pool: 'p' },
});

const claimed = (t: NodeTable, env: string) => t.claimedBy(env).map((n) => n.id).sort();

test('NodeTable: a claim that moves, is released or whose node goes is found under its new owner only', () => {
  const t = NodeTable.of([node('1', 'qa'), node('2', 'qa'), node('3')]);
  assert.deepEqual(claimed(t, 'qa'), ['1', '2']);
  assert.equal(t.size, 3);

  t.set(node('2', 'dev'));
  assert.deepEqual(claimed(t, 'qa'), ['1']);
  assert.deepEqual(claimed(t, 'dev'), ['2']);

  t.set(node('1'));
  assert.deepEqual(claimed(t, 'qa'), []);
  assert.equal(t.get('1')?.labels[LABEL_ENV], undefined);

  t.delete('2');
  assert.deepEqual(claimed(t, 'dev'), []);
  assert.equal(t.get('2'), undefined);
  assert.deepEqual([...t.values()].map((n) => n.id).sort(), ['1', '3']);
});
