import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exitCodeFor, UsageError } from '../../src/cli/run.js';
import { InvalidInputError } from '../../src/api/errors.js';

test('invalid input and usage errors exit 2, anything else 1', () => {
  assert.equal(exitCodeFor(new InvalidInputError([{ path: 'spec.nodes', message: 'too big' }])), 2);
  assert.equal(exitCodeFor(new UsageError('bad flag')), 2);
  assert.equal(exitCodeFor(new Error('etcd down')), 1);
});

test('invalid input names file, document and field', () => {
  const err = new InvalidInputError([{ path: 'spec.nodes', message: 'too big' }], { file: 'e.yaml', document: 2 });
  assert.equal(err.message, 'e.yaml:2: spec.nodes: too big');
});

test('a problem with a whole file names just the file', () => {
  const err = new InvalidInputError([{ path: '', message: 'no such file or directory' }], { file: 'e.yaml', document: 0 });
  assert.equal(err.message, 'e.yaml: no such file or directory');
});
