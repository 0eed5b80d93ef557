import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunksOf, roundsById } from '../../src/util/chunks.js';

test('chunksOf: in order, cut by count and by bytes; an item over the byte limit goes alone', () => {
  const id = (n: number) => n;
  assert.deepEqual(chunksOf([1, 1, 1, 1, 1], 2, 100, id), [[1, 1], [1, 1], [1]]);
  assert.deepEqual(chunksOf([3, 3, 3, 1], 10, 6, id), [[3, 3], [3, 1]]);
  assert.deepEqual(chunksOf([2, 9, 2], 10, 5, id), [[2], [9], [2]]);
  assert.deepEqual(chunksOf([], 10, 5, id), []);
});

test('roundsById: each id once per round, rounds in input order', () => {
  const items = ['a1', 'b1', 'a2', 'c1', 'a3', 'b2'];
  assert.deepEqual(roundsById(items, (s) => s[0]!), [
    ['a1', 'b1', 'c1'],
    ['a2', 'b2'],
    ['a3'],
  ]);
});
