import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { credentialsFromConfig, loadDockerCredentials } from '../../src/registry/credentials.js';
import { RegistryClient } from '../../src/registry/client.js';
import { RegistryError } from '../../src/registry/errors.js';
import { parseImageReference, pinnedReference } from '../../src/registry/reference.js';
import { startFakeRegistry } from '../support/fake-registry.js';

const D1 = `sha256:${'a'.repeat(64)}`;

test('image references: registry host, Docker Hub library, tag, digest', () => {
  assert.deepEqual(parseImageReference('10.77.0.1:5000/web:v1'), { registry: '10.77.0.1:5000', repository: 'web', tag: 'v1' });
  assert.deepEqual(parseImageReference('nginx'), { registry: 'docker.io', repository: 'library/nginx' });
  assert.deepEqual(parseImageReference('acme/api:2'), { registry: 'docker.io', repository: 'acme/api', tag: '2' });
  assert.deepEqual(parseImageReference('localhost/a/b'), { registry: 'localhost', repository: 'a/b' });
  assert.deepEqual(parseImageReference(`reg.io:443/team/web:v1@${D1}`), { registry: 'reg.io:443', repository: 'team/web', tag: 'v1', digest: D1 });
  assert.equal(pinnedReference('10.77.0.1:5000/web:v1', D1), `10.77.0.1:5000/web:v1@${D1}`);
  assert.equal(pinnedReference(`web:v1@sha256:${'b'.repeat(64)}`, D1), `web:v1@${D1}`);
});

test('credentials from a Docker config.json: auth, username/password, identity token; missing file is anonymous', async () => {
  const lookup = credentialsFromConfig({
    auths: {
      'https://index.docker.io/v1/': { auth: Buffer.from('hub:secret').toString('base64') },
      'reg.io:5000': { username: 'u', password: 'p' },
      'http://tok.io': { identitytoken: 'refresh' },
    },
  });
  assert.deepEqual(await lookup('docker.io'), { username: 'hub', password: 'secret' });
  assert.deepEqual(await lookup('reg.io:5000'), { username: 'u', password: 'p' });
  assert.deepEqual(await lookup('tok.io'), { identityToken: 'refresh' });
  assert.equal(await lookup('other.io'), undefined);
  assert.equal(await loadDockerCredentials(path.join(os.tmpdir(), 'berth-no-such-config.json'))('reg.io'), undefined);
  const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cfg-')), 'config.json');
  fs.writeFileSync(bad, 'not json');
  assert.throws(() => loadDockerCredentials(bad));
});

test('resolves a tag with HEAD and Accept for lists, v2 and OCI; a pinned reference needs no call', async () => {
  const reg = await startFakeRegistry();
  try {
    const digest = reg.push('team/web', 'v1', '{"schemaVersion":2,"v":1}');
    const client = new RegistryClient();
    assert.equal(await client.resolveDigest(`${reg.host}/team/web:v1`), digest);
    assert.deepEqual(reg.requests.map((r) => r.method + ' ' + r.url), ['HEAD /v2/team/web/manifests/v1']);
    assert.equal(await client.resolveDigest(`${reg.host}/team/web:v1@${D1}`), D1);
    assert.equal(reg.requests.length, 1);
    reg.push('team/web', 'v1', '{"schemaVersion":2,"v":2}');
    assert.notEqual(await client.resolveDigest(`${reg.host}/team/web:v1`), digest, 'a moved tag resolves to the new digest');
  } finally {
    await reg.close();
  }
});

test('without Docker-Content-Digest on HEAD, the digest is the hash of the manifest body', async () => {
  const reg = await startFakeRegistry({ noDigestOnHead: true });
  try {
    const digest = reg.push('web', 'latest', '{"schemaVersion":2}');
    assert.equal(await new RegistryClient().resolveDigest(`${reg.host}/web`), digest);
  } finally {
    await reg.close();
  }
});

test('basic and bearer auth with the credentials of config.json', async () => {
  for (const auth of ['basic', 'bearer'] as const) {
    const reg = await startFakeRegistry({ auth, user: 'ci', password: 'pw' });
    try {
      const digest = reg.push('web', 'v1', '{}');
      const anonymous = new RegistryClient();
      await assert.rejects(anonymous.resolveDigest(`${reg.host}/web:v1`), (e: unknown) => e instanceof RegistryError && e.kind === 'unauthorized' && !e.recoverable);
      const client = new RegistryClient({ credentials: credentialsFromConfig({ auths: { [reg.host]: { username: 'ci', password: 'pw' } } }) });
      assert.equal(await client.resolveDigest(`${reg.host}/web:v1`), digest, auth);
      if (auth === 'bearer') assert.ok(reg.requests.some((r) => r.url.startsWith('/token?service=fake&scope=repository%3Aweb%3Apull')));
    } finally {
      await reg.close();
    }
  }
});

test('an unknown tag is not-found, not recoverable, and not retried', async () => {
  const reg = await startFakeRegistry();
  try {
    await assert.rejects(new RegistryClient().resolveDigest(`${reg.host}/web:nope`), (e: unknown) => e instanceof RegistryError && e.kind === 'not-found' && !e.recoverable);
    assert.equal(reg.requests.length, 1);
  } finally {
    await reg.close();
  }
});

test('a 503 is retried; a registry that does not answer is unreachable and recoverable', async () => {
  const reg = await startFakeRegistry({ failNext: 2 });
  const digest = reg.push('web', 'v1', '{}');
  const client = new RegistryClient({ minRetryDelayMs: 1 });
  try {
    assert.equal(await client.resolveDigest(`${reg.host}/web:v1`), digest);
    assert.equal(reg.requests.length, 3);
  } finally {
    await reg.close();
  }
  await assert.rejects(client.resolveDigest(`${reg.host}/web:v1`), (e: unknown) => e instanceof RegistryError && e.kind === 'unreachable' && e.recoverable && e.cause !== undefined);
});

test('tagging a digest copies its manifest under the new tag, media type kept', async () => {
  const reg = await startFakeRegistry({ auth: 'bearer', user: 'u', password: 'p' });
  try {
    const digest = reg.push('web', 'v2', '{"schemaVersion":2,"mediaType":"oci"}', 'application/vnd.oci.image.manifest.v1+json');
    const client = new RegistryClient({ credentials: async () => ({ username: 'u', password: 'p' }) });
    await client.tagDigest(`${reg.host}/web`, digest, 'tested');
    assert.equal(reg.digestOf('web', 'tested'), digest);
    assert.ok(reg.requests.some((r) => r.url.includes('scope=repository%3Aweb%3Apull%2Cpush')));
  } finally {
    await reg.close();
  }
});
