import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { InvalidInputError } from '../../src/api/errors.js';
import { parseResource } from '../../src/api/resource.js';
import { checkGroupReferences, parseDocuments } from '../../src/cli/load.js';
import { INVALID_CASES, validEnvDoc, validGroupDoc } from '../support/invalid-docs.js';

const file = (...docs: unknown[]) => docs.map((d) => stringify(d)).join('---\n');

describe('berth apply: invalid documents name file:document: field', () => {
  it('names every invalid field of one document, not only the first', () => {
    const doc = validEnvDoc();
    doc.spec.services.api.image = 'Not An Image';
    doc.spec.services.api.replicas = 5_000;
    doc.spec.services.api.healthcheck.retries = -1;
    doc.metadata.labels.team = 'a b';
    assert.throws(
      () => parseDocuments('many.yaml', file(doc)),
      (err: unknown) => {
        assert.ok(err instanceof InvalidInputError, String(err));
        const named = err.message.split('\n').map((line) => /^many\.yaml:1: ([^:]+): /.exec(line)?.[1]).filter(Boolean);
        assert.deepEqual(named.sort(), [
          'metadata.labels.team',
          'spec.services.api.healthcheck.retries',
          'spec.services.api.image',
          'spec.services.api.replicas',
        ]);
        return true;
      },
    );
  });

  it('the valid base documents pass', () => {
    assert.equal(parseDocuments('ok.yaml', file(validGroupDoc(), validEnvDoc())).length, 2);
  });

  for (const c of INVALID_CASES) {
    it(c.name, () => {
      // the invalid document is the 2nd of the file: nothing of the file may be returned
      assert.throws(
        () => parseDocuments('x.yaml', file(validGroupDoc(), c.doc)),
        (err: unknown) => {
          assert.ok(err instanceof InvalidInputError, String(err));
          assert.deepEqual(err.location, { file: 'x.yaml', document: 2 });
          const paths = err.problems.map((p) => p.path || '(document)');
          assert.ok(paths.includes(c.path), `expected ${c.path}, got ${paths.join(' | ')}`);
          assert.match(err.message, new RegExp(`^x\\.yaml:2: ${c.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `, 'm'));
          return true;
        },
      );
    });
  }

  it('reports a YAML syntax error with file, document and line', () => {
    assert.throws(
      () => parseDocuments('bad.yaml', `${stringify(validGroupDoc())}---\nkind: [unclosed\n`),
      (err: unknown) => err instanceof InvalidInputError && /^bad\.yaml:2: line \d+: /.test(err.message),
    );
  });

  it('reports every invalid document of a file', () => {
    const bad1 = validEnvDoc();
    bad1.spec.nodes = -1;
    const bad2 = validGroupDoc();
    bad2.spec.spare = -1;
    assert.throws(
      () => parseDocuments('two.yaml', file(bad1, validGroupDoc(), bad2)),
      (err: unknown) => err instanceof InvalidInputError && /two\.yaml:1: spec\.nodes: /.test(err.message) && /two\.yaml:3: spec\.spare: /.test(err.message),
    );
  });

  it('refuses a duplicate resource in one file', () => {
    assert.throws(() => parseDocuments('dup.yaml', file(validGroupDoc(), validGroupDoc())), /dup\.yaml:2: metadata\.name: duplicate of document 1/);
  });

  it('skips empty documents but keeps their numbering', () => {
    const other = validGroupDoc();
    other.metadata.name = 'other';
    const loaded = parseDocuments('e.yaml', `${stringify(validGroupDoc())}---\n---\n${stringify(other)}---\n`);
    assert.deepEqual(loaded.map((l) => l.document), [1, 3]);
  });

  it('reads YAML as the `yaml` library does, anchors, flow and block styles, numbers and dates included', () => {
    // js-yaml reads a valid file first (quicker); this is the same file read by `yaml` alone.
    const text = [
      `apiVersion: berth.dev/v1alpha1\nkind: EnvironmentGroup\nmetadata: {name: qa-pool, labels: {since: 2026-01-01}}\nspec: {nodeSelector: {pool: "qa", tier: '1'}, spare: 0x1}`,
      `# a comment-only document\n`,
      `apiVersion: berth.dev/v1alpha1
kind: Environment
metadata:
  name: qa-1
  labels: {team: api, build: "0o17"}
spec:
  group: qa-pool
  nodes: 0o2
  services:
    api:
      image: 10.77.0.1:5000/web:v2
      replicas: +2
      command: [sh, -c, 'echo "a: b" # not a comment']
      environment: &common
        LOG_LEVEL: info
        GREETING: >-
          hello
          world
        BANNER: |
          line one
          line two
        EMPTY: ""
        N: "1_000"
      ports: [{target: 8080}]
    worker:
      image: 10.77.0.1:5000/web:v2
      replicas: 1
      environment: *common
...
`,
    ].join('\n---\n');
    const viaYaml = parseAllDocuments(text).flatMap((doc, i) => {
      const value: unknown = doc.toJS();
      return value === null ? [] : [{ resource: parseResource(value, { file: 'y.yaml', document: i + 1 }), file: 'y.yaml', document: i + 1 }];
    });
    assert.equal(viaYaml.length, 2);
    assert.deepEqual(parseDocuments('y.yaml', text), viaYaml);
  });

  it('an Environment needs its group in the batch or in etcd, else spec.group', () => {
    const [env] = parseDocuments('env.yaml', file(validEnvDoc()));
    const errors = checkGroupReferences([env!], new Set());
    assert.equal(errors[0]?.message.split(':').slice(0, 3).join(':'), 'env.yaml:1: spec.group');
    assert.deepEqual(checkGroupReferences([env!], new Set(['qa-pool'])), []);
    const both = parseDocuments('both.yaml', file(validEnvDoc(), validGroupDoc()));
    assert.deepEqual(checkGroupReferences(both, new Set()), []);
  });
});
