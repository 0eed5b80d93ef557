/**
 * Docker credential helpers, run for real: tiny `docker-credential-*` scripts in a temp dir put
 * first on PATH, speaking the helper protocol (server URL on stdin, JSON on stdout).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CredentialHelperError } from '../../src/registry/credential-helper.js';
import { credentialsFromConfig, loadDockerCredentials } from '../../src/registry/credentials.js';
import { RegistryClient } from '../../src/registry/client.js';
import { RegistryError } from '../../src/registry/errors.js';
import { startFakeRegistry } from '../support/fake-registry.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cred-helpers-'));
const savedPath = process.env.PATH;

/** Each helper answers with what it read on stdin in the Username, so a test sees the server URL it was given. */
const HELPERS: Record<string, string> = {
  store: 'read url; printf \'{"ServerURL":"%s","Username":"store-%s","Secret":"s3cret"}\' "$url" "$url"',
  other: 'read url; printf \'{"ServerURL":"%s","Username":"other","Secret":"pw"}\' "$url"',
  token: 'read url; printf \'{"ServerURL":"%s","Username":"<token>","Secret":"refresh-1"}\' "$url"',
  empty: 'read url; echo "credentials not found in native keychain"; exit 1',
  broken: 'read url; echo "keychain locked" >&2; exit 3',
  garbled: 'read url; echo "hello"',
};

before(() => {
  for (const [name, body] of Object.entries(HELPERS)) {
    const file = path.join(dir, `docker-credential-${name}`);
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  process.env.PATH = `${dir}:${savedPath}`;
});

after(() => {
  process.env.PATH = savedPath;
  fs.rmSync(dir, { recursive: true, force: true });
});

test('credsStore: the helper gets the registry host on stdin (Docker Hub as the index URL) and its answer is the credential', async () => {
  const lookup = credentialsFromConfig({ credsStore: 'store', auths: { 'reg.io:5000': {} } });
  assert.deepEqual(await lookup('reg.io:5000'), { username: 'store-reg.io:5000', password: 's3cret' });
  assert.deepEqual(await lookup('docker.io'), { username: 'store-https://index.docker.io/v1/', password: 's3cret' });
});

test('credHelpers wins over credsStore and auths for its registry; the others keep theirs', async () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const lookup = credentialsFromConfig({ credsStore: 'store', credHelpers: { 'https://reg.io': 'other', 'tok.io': 'token' }, auths: { 'reg.io': { auth: b64('file:pw') } } });
  assert.deepEqual(await lookup('reg.io'), { username: 'other', password: 'pw' });
  assert.deepEqual(await lookup('tok.io'), { identityToken: 'refresh-1' }, 'Username <token>: the secret is an identity token');
  assert.deepEqual(await lookup('x.io'), { username: 'store-x.io', password: 's3cret' });
  const fileOnly = credentialsFromConfig({ credHelpers: { 'tok.io': 'token' }, auths: { 'reg.io': { auth: b64('file:pw') } } });
  assert.deepEqual(await fileOnly('reg.io'), { username: 'file', password: 'pw' }, 'no helper for it: the auths entry');
});

test('a helper that has nothing for the registry means no credential, not an error', async () => {
  assert.equal(await credentialsFromConfig({ credsStore: 'empty' })('reg.io'), undefined);
});

test('a helper that fails, is missing or answers garbage is a CredentialHelperError naming the helper and the server', async () => {
  const cases: Array<[string, RegExp]> = [
    ['broken', /^credential helper docker-credential-broken \(get reg\.io\): exit code 3: keychain locked$/],
    ['nope', /^credential helper docker-credential-nope \(get reg\.io\): not found on PATH$/],
    ['garbled', /^credential helper docker-credential-garbled \(get reg\.io\): answer is not JSON$/],
  ];
  for (const [helper, message] of cases) {
    await assert.rejects(credentialsFromConfig({ credsStore: helper })('reg.io'), (e: unknown) => e instanceof CredentialHelperError && e.helper === helper && message.test(e.message), helper);
  }
});

test('config.json read from a file runs its helpers; a file that is not JSON is an error naming it', async () => {
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify({ credHelpers: { 'reg.io': 'other' } }));
  assert.deepEqual(await loadDockerCredentials(file)('reg.io'), { username: 'other', password: 'pw' });
  fs.writeFileSync(file, '{ nope');
  assert.throws(() => loadDockerCredentials(file), new RegExp(`^Error: ${file}: not JSON`));
});

test('resolving a digest: the helper\'s credential answers the registry\'s challenge; a failing helper is unauthorized, named, not retried', async () => {
  const reg = await startFakeRegistry({ auth: 'basic', user: 'other', password: 'pw' });
  try {
    const digest = reg.push('web', 'v1', '{}');
    const client = new RegistryClient({ credentials: credentialsFromConfig({ credHelpers: { [reg.host]: 'other' } }) });
    assert.equal(await client.resolveDigest(`${reg.host}/web:v1`), digest);
    const failing = new RegistryClient({ credentials: credentialsFromConfig({ credsStore: 'broken' }), minRetryDelayMs: 0 });
    const before = reg.requests.length;
    await assert.rejects(failing.resolveDigest(`${reg.host}/web:v1`), (e: unknown) => e instanceof RegistryError && e.kind === 'unauthorized' && /docker-credential-broken/.test(e.message));
    assert.equal(reg.requests.length - before, 1, 'one challenge, no retry');
  } finally {
    await reg.close();
  }
});
