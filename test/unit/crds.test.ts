import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { generateCrds } from '../../scripts/crds.js';

describe('crds/', () => {
  for (const file of generateCrds()) {
    it(`${file.path} matches the zod schemas (run \`npm run crds\` after changing src/api)`, () => {
      assert.equal(readFileSync(file.path, 'utf8'), file.content);
    });
  }

  it('CRDs are apiextensions v1, group berth.dev, v1alpha1 served and stored, with no $schema', () => {
    for (const file of generateCrds().filter((f) => f.path.endsWith('.crd.yaml'))) {
      const doc = parse(file.content);
      assert.equal(doc.apiVersion, 'apiextensions.k8s.io/v1');
      assert.equal(doc.spec.group, 'berth.dev');
      assert.deepEqual(doc.spec.versions.map((v: { name: string; served: boolean; storage: boolean }) => [v.name, v.served, v.storage]), [['v1alpha1', true, true]]);
      assert.ok(!file.content.includes('$schema'));
      assert.ok(!/\n\s*type:\n\s*- /.test(file.content), 'no array-valued type');
    }
  });
});
