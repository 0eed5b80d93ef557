import { test } from 'node:test';
import assert from 'node:assert/strict';
import { storeConfig } from '../../src/store/client.js';
import { etcdClientOptions, etcdSecurityFrom, EtcdSecurityError } from '../../src/store/etcd-security.js';
import { credentialsFromConfig } from '../../src/registry/credentials.js';
import { authFor } from '../../src/swarm/registry-auth.js';

test('etcd TLS and password settings: flags over environment, bare endpoints become https with a CA', () => {
  const env = { BERTH_ETCD_CA: '/env/ca.pem', BERTH_ETCD_USERNAME: 'berth', BERTH_ETCD_PASSWORD_FILE: '/env/pw' };
  const cfg = storeConfig({ etcdEndpoints: 'etcd:2379', etcdCa: '/flag/ca.pem' }, env);
  assert.deepEqual(cfg.endpoints, ['https://etcd:2379']);
  assert.deepEqual(cfg.security, { caFile: '/flag/ca.pem', username: 'berth', passwordFile: '/env/pw' });
  assert.equal(storeConfig({}, {}).security, undefined);
});

test('etcd settings that do not go together are refused', () => {
  assert.throws(() => etcdSecurityFrom({ etcdCert: '/c' }, { BERTH_ETCD_CA: '/ca' }), EtcdSecurityError);
  assert.throws(() => etcdSecurityFrom({ etcdCert: '/c', etcdKey: '/k' }, {}), /needs BERTH_ETCD_CA/);
  assert.throws(() => etcdSecurityFrom({ etcdUsername: 'u' }, {}), /PASSWORD_FILE/);
});

test('etcd client options read the files; the password file loses its trailing newline', () => {
  const files: Record<string, string> = { '/ca': 'CA', '/c': 'CERT', '/k': 'KEY', '/pw': 's3cret\n' };
  const opts = etcdClientOptions({ caFile: '/ca', certFile: '/c', keyFile: '/k', username: 'u', passwordFile: '/pw' }, (f) => Buffer.from(files[f]!));
  assert.equal(opts.credentials?.rootCertificate.toString(), 'CA');
  assert.equal(opts.credentials?.certChain?.toString(), 'CERT');
  assert.equal(opts.credentials?.privateKey?.toString(), 'KEY');
  assert.deepEqual(opts.auth, { username: 'u', password: 's3cret' });
});

test('registry credentials: the image\'s registry host picks the config.json entry for Swarm', async () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const credentials = credentialsFromConfig({ auths: { '10.77.0.1:5443': { auth: b64('ci:pa:ss') }, 'https://index.docker.io/v1/': { auth: b64('hub:pw') }, 'tok.example': { identitytoken: 'T' } } });
  assert.deepEqual(await authFor(credentials, '10.77.0.1:5443/web:v1'), { username: 'ci', password: 'pa:ss', serveraddress: '10.77.0.1:5443' });
  assert.deepEqual(await authFor(credentials, '10.77.0.1:5443/web:v1@sha256:' + 'a'.repeat(64)), { username: 'ci', password: 'pa:ss', serveraddress: '10.77.0.1:5443' });
  assert.deepEqual(await authFor(credentials, 'nginx'), { username: 'hub', password: 'pw', serveraddress: 'docker.io' });
  assert.deepEqual(await authFor(credentials, 'tok.example/x:1'), { identitytoken: 'T', serveraddress: 'tok.example' });
  assert.equal(await authFor(credentials, 'other.example:5000/x'), undefined);
});
