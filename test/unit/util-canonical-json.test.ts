import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalJson } from '../../src/util/canonical-json.js';

test('key order does not matter, at any depth', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: 2, c: [{ f: 3, e: 4 }] } }), canonicalJson({ a: { c: [{ e: 4, f: 3 }], d: 2 }, b: 1 }));
});

test('keys sort by code unit, integer-like ones included, and undefined properties are left out', () => {
  // The exact text is pinned: service spec hashes are computed over it.
  assert.equal(canonicalJson({ b: undefined, '10': 'x', '2': null, a: [1, 'two'] }), '{"10":"x","2":null,"a":[1,"two"]}');
});

test('the same text as the entries / filter / sort / map form it replaced, for any JSON-like value', () => {
  // The form every spec hash in running services was computed with.
  const before = (value: unknown): string => {
    if (Array.isArray(value)) return `[${value.map(before).join(',')}]`;
    if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${before(v)}`).join(',')}}`;
    }
    return JSON.stringify(value);
  };
  const value = fc.letrec((tie) => ({
    any: fc.oneof({ depthSize: 'small' }, tie('leaf'), tie('array'), tie('object')),
    leaf: fc.oneof(fc.constant(undefined), fc.constant(null), fc.boolean(), fc.double(), fc.integer(), fc.string({ unit: 'binary' })),
    array: fc.array(tie('any'), { maxLength: 5 }),
    object: fc.dictionary(fc.oneof(fc.string({ unit: 'binary' }), fc.nat().map(String)), tie('any'), { maxKeys: 6 }),
  })).any;
  fc.assert(fc.property(value, (v) => canonicalJson(v) === before(v)), { numRuns: 2000 });
});
