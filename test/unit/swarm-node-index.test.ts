import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
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

test('NodeTable: a pool kept node by node counts what a walk over every node counts', () => {
  const selector = { pool: 'p' };
  const inPool = (n: ObservedNode) => n.labels.pool === 'p';
  const schedulable = (n: ObservedNode) => n.state === 'ready' && n.availability === 'active';
  const change = fc.record({
    id: fc.constantFrom('1', '2', '3', '4', '5'),
    remove: fc.boolean(),
    env: fc.option(fc.constantFrom('qa', 'dev'), { nil: undefined }),
    pool: fc.constantFrom('p', 'other'),
    state: fc.constantFrom<ObservedNode['state']>('ready', 'down'),
    availability: fc.constantFrom<ObservedNode['availability']>('active', 'drain'),
  });
  fc.assert(
    fc.property(fc.array(change, { maxLength: 40 }), fc.nat(40), (changes, askAt) => {
      const t = new NodeTable();
      changes.forEach((c, i) => {
        // The pool is asked for part way through: counted once then, kept after.
        if (i === askAt) t.pool(selector);
        if (c.remove) t.delete(c.id);
        else t.set({ ...node(c.id, c.env), state: c.state, availability: c.availability, labels: { pool: c.pool, ...(c.env ? { [LABEL_ENV]: c.env } : {}) } });
      });
      const all = [...t.values()].filter(inPool);
      const p = t.pool(selector);
      assert.equal(p.size, all.length);
      assert.equal(p.claimedSchedulable, all.filter((n) => n.labels[LABEL_ENV] !== undefined && schedulable(n)).length);
      assert.deepEqual([...p.free()].map((n) => n.id).sort(), all.filter((n) => n.labels[LABEL_ENV] === undefined && schedulable(n)).map((n) => n.id).sort());
    }),
  );
});

test('NodeTable: an assumed claim ends when the node is read claimed, not when it is read still free', () => {
  const t = NodeTable.of([node('1'), node('2')]);
  t.assumeClaim('1', 'qa');
  t.set(node('1'));
  assert.equal(t.assumedClaim('1'), 'qa', 'a read from before the claim landed');
  t.set(node('1', 'qa'));
  assert.equal(t.assumedClaim('1'), undefined);
  t.assumeClaim('2', 'dev');
  t.forgetAssumed('2');
  assert.equal(t.assumedClaim('2'), undefined);
});
