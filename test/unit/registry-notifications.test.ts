import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { environmentSchema, type Environment } from '../../src/api/index.js';
import { notificationSettings } from '../../src/cli/controller.js';
import { registryPushSource, type RegistryPushWatch } from '../../src/controller/source-registry-pushes.js';
import { PushedTags, tagPushes, type TagPush } from '../../src/registry/notifications.js';
import { registryNotificationHandler, type NotifyResult } from '../../src/registry/notify-endpoint.js';
import { UsageError } from '../../src/cli/run.js';
import type { RegistryPush } from '../../src/store/registry-pushes.js';
import { RecordingQueue, settle, silentLog } from '../support/fake-runtime.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** An event as distribution 2.8 sends it for `docker push 10.77.0.1:5000/web:v2` (fields berth ignores included). */
function event(over: Record<string, unknown> = {}, target: Record<string, unknown> = {}) {
  return {
    id: 'e1',
    timestamp: '2030-01-01T00:00:00Z',
    action: 'push',
    target: { mediaType: MANIFEST, size: 527, digest: D('a'), length: 527, repository: 'web', url: 'http://10.77.0.1:5000/v2/web/manifests/sha256:…', tag: 'v2', ...target },
    request: { id: 'r1', addr: '10.77.0.1:41000', host: '10.77.0.1:5000', method: 'PUT', useragent: 'docker/20.10' },
    actor: {},
    source: { addr: 'lab:5000', instanceID: 'i1' },
    ...over,
  };
}

test('tag pushes: manifest pushes under a tag only; pulls, blobs, untagged pushes and fields out of grammar are left out', () => {
  const pushes = tagPushes({
    events: [
      event(),
      event({ action: 'pull' }),
      event({}, { mediaType: 'application/octet-stream', tag: undefined }),
      event({}, { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' }),
      event({}, { tag: undefined }),
      event({}, { repository: 'Web/../x' }),
      event({}, { digest: 'md5:abc' }),
      event({}, { tag: 'v3', digest: D('b'), repository: 'team/api', mediaType: 'application/vnd.oci.image.index.v1+json' }),
    ],
  });
  assert.deepEqual(pushes, [
    { repository: 'web', tag: 'v2', digest: D('a') },
    { repository: 'team/api', tag: 'v3', digest: D('b') },
  ]);
});

test('a push matches spec images by repository and tag, whatever the registry host; a pinned image never', () => {
  const pushed = new PushedTags();
  pushed.record({ repository: 'web', tag: 'v2', digest: D('a') });
  assert.equal(pushed.digestFor('10.77.0.1:5000/web:v2'), D('a'));
  assert.equal(pushed.digestFor('localhost:5000/web:v2'), D('a'));
  assert.equal(pushed.digestFor('10.77.0.1:5000/web:v1'), undefined);
  assert.equal(pushed.digestFor(`10.77.0.1:5000/web:v2@${D('c')}`), undefined);
  pushed.forget('web:v2');
  assert.equal(pushed.digestFor('10.77.0.1:5000/web:v2'), undefined);
});

let server: Server;
let url = '';
const recorded: TagPush[][] = [];
const results: NotifyResult[] = [];
let storeDown = false;

before(async () => {
  const handler = registryNotificationHandler({
    token: 's3cret',
    maxBytes: 4096,
    record: async (pushes) => {
      if (storeDown) throw new Error('etcd unavailable');
      recorded.push(pushes);
    },
    log: silentLog,
    onResult: (r) => results.push(r),
  });
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/registry/notifications`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const TYPE = 'application/vnd.docker.distribution.events.v1+json';
async function post(body: string, headers: Record<string, string> = { authorization: 'Bearer s3cret', 'content-type': TYPE }, method = 'POST') {
  const res = await fetch(url, { method, headers, ...(method === 'POST' ? { body } : {}) });
  return { status: res.status, text: await res.text() };
}

test('the endpoint records the tag pushes of a valid envelope, with the token', async () => {
  recorded.length = 0;
  const r = await post(JSON.stringify({ events: [event(), event({ action: 'pull' })] }));
  assert.equal(r.status, 200);
  assert.deepEqual(recorded, [[{ repository: 'web', tag: 'v2', digest: D('a') }]]);
  assert.equal(results.at(-1), 'accepted');
  assert.equal((await post(JSON.stringify({ events: [event({}, { tag: undefined, mediaType: 'application/octet-stream' })] }))).status, 200, 'a blob push: nothing to record, but no retry either');
  assert.equal(results.at(-1), 'ignored');
  assert.equal(recorded.length, 1);
});

test('the endpoint refuses what is not a registry notification, and records nothing', async () => {
  recorded.length = 0;
  const valid = JSON.stringify({ events: [event()] });
  const cases: Array<[string, Promise<{ status: number }>, number]> = [
    ['GET', post('', { authorization: 'Bearer s3cret' }, 'GET'), 405],
    ['no token', post(valid, { 'content-type': TYPE }), 401],
    ['wrong token', post(valid, { authorization: 'Bearer s3cres', 'content-type': TYPE }), 401],
    ['not JSON by type', post(valid, { authorization: 'Bearer s3cret', 'content-type': 'text/plain' }), 415],
    ['not JSON', post('{"events": [', undefined), 400],
    ['not an envelope', post(JSON.stringify({ events: 'all' }), undefined), 400],
    ['too big', post(JSON.stringify({ events: [event({ pad: 'x'.repeat(5000) })] }), undefined), 413],
  ];
  for (const [what, answer, status] of cases) assert.equal((await answer).status, status, what);
  assert.deepEqual(recorded, []);
  assert.equal(results.at(-1), 'rejected');
});

test('a push that cannot be stored answers 503: the registry sends it again', async () => {
  storeDown = true;
  try {
    assert.equal((await post(JSON.stringify({ events: [event()] }))).status, 503);
    assert.equal(results.at(-1), 'failed');
  } finally {
    storeDown = false;
  }
});

function envTracking(name: string, services: Record<string, unknown>, jobs: Record<string, unknown> = {}): Environment {
  return environmentSchema.parse({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name }, spec: { group: 'g', nodes: 1, services, jobs } });
}

test('a pushed tag enqueues exactly the environments that track it (a service or a job), and is recorded first', async () => {
  const envs = [
    envTracking('qa', { web: { image: '10.77.0.1:5000/web:v2', track: '1h' } }),
    envTracking('prod', { web: { image: '10.77.0.1:5000/web:v2' } }), // pinned to what it resolved: not tracking
    envTracking('batch', {}, { report: { image: '10.77.0.1:5000/web:v2', schedule: '@daily', track: '1h' } }),
    envTracking('other', { web: { image: '10.77.0.1:5000/web:v1', track: '1h' } }),
  ];
  let deliver: Parameters<RegistryPushWatch>[0] = () => undefined;
  const watch: RegistryPushWatch = (on) => {
    deliver = on;
    return { close: async () => undefined };
  };
  const pushed = new PushedTags();
  let digestWhenListed: string | undefined;
  const source = registryPushSource(watch, pushed, {
    listEnvironments: async () => {
      digestWhenListed = pushed.digestFor('10.77.0.1:5000/web:v2');
      return envs;
    },
  }, silentLog);
  const queue = new RecordingQueue();
  const abort = new AbortController();
  let synced = false;
  const done = source.run(queue, abort.signal, () => (synced = true));
  assert.ok(synced);
  const push: RegistryPush = { repository: 'web', tag: 'v2', digest: D('a'), at: '2030-01-01T00:00:00Z' };
  deliver([push], []);
  await settle();
  assert.deepEqual(queue.take(), ['env/batch', 'env/qa']);
  assert.equal(digestWhenListed, D('a'), 'the reconciles see the push');
  deliver([], ['web:v2']);
  await settle();
  assert.deepEqual(queue.take(), []);
  assert.equal(pushed.digestFor('10.77.0.1:5000/web:v2'), undefined, 'an expired push is forgotten');
  abort.abort();
  await done;
});

test('--registry-notifications: off by default; on by flag or environment; a token file turns it on with the token', () => {
  assert.equal(notificationSettings({}, {}), undefined);
  assert.deepEqual(notificationSettings({ registryNotifications: true }, {}), {});
  assert.deepEqual(notificationSettings({}, { BERTH_REGISTRY_NOTIFICATIONS: 'true' }), {});
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-notify-'));
  try {
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 's3cret\n');
    assert.deepEqual(notificationSettings({}, { BERTH_REGISTRY_NOTIFICATIONS_TOKEN_FILE: file }), { token: 's3cret' });
    fs.writeFileSync(file, '\n');
    assert.throws(() => notificationSettings({ registryNotificationsTokenFile: file }, {}), UsageError);
    assert.throws(() => notificationSettings({ registryNotificationsTokenFile: path.join(dir, 'missing') }, {}), UsageError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
