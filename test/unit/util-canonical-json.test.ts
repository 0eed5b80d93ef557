import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from '../../src/util/canonical-json.js';

test('key order does not matter, at any depth', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: 2, c: [{ f: 3, e: 4 }] } }), canonicalJson({ a: { c: [{ e: 4, f: 3 }], d: 2 }, b: 1 }));
});

test('keys sort by code unit, integer-like ones included, and undefined properties are left out', () => {
  // The exact text is pinned: service spec hashes are computed over it.
  assert.equal(canonicalJson({ b: undefined, '10': 'x', '2': null, a: [1, 'two'] }), '{"10":"x","2":null,"a":[1,"two"]}');
});
