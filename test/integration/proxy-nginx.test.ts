import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { get, sleep, startBackend, startRig, stopBackend, until, type Backend, type RoutingRig } from '../support/proxy-harness.js';

/**
 * berth proxy against REAL parts: a private etcd (127.0.0.1:23791), a real nginx started here
 * (127.0.0.1:18080, own temp config), two loopback backends answering v1 / v2.
 */
let rig: RoutingRig;
let v1: Backend;
let v2: Backend;
const owner = { env: 'qa-1', service: 'api' };
const port = 18080;

before(async () => {
  v1 = await startBackend('v1');
  v2 = await startBackend('v2');
  rig = await startRig({ etcdPort: 23791, nginxPort: port, prefix: '/berth-proxy-test/routes' });
});

after(async () => {
  await rig?.stop();
  if (v1) await stopBackend(v1);
  if (v2) await stopBackend(v2);
});

const reloads = () => rig.proxy.history.filter((h) => h.result === 'reloaded').length;
const answers = (host: string, body: string) => async () => {
  const r = await get(port, host);
  return r.status === 200 && r.body === body;
};
const conf = () => readFileSync(rig.nginx.upstreamsConf, 'utf8');

test('set route → nginx answers v1; replace servers → v2', async () => {
  const first = rig.proxy.nextApply();
  await rig.routes.setRoute({ upstream: 'qa-1-api', servers: [v1.addr], color: 'blue', owner });
  assert.equal(await first, 'reloaded');
  assert.equal((await get(port, 'qa-1-api')).body, 'v1');
  const applied = rig.proxy.nextApply();
  await rig.routes.setRoute({ upstream: 'qa-1-api', servers: [v2.addr], color: 'green', owner });
  assert.equal(await applied, 'reloaded');
  // Reload confirmed (old workers stopped accepting): from here on only v2 answers.
  for (let i = 0; i < 20; i++) assert.equal((await get(port, 'qa-1-api')).body, 'v2');
  assert.deepEqual(await rig.routes.listRoutes(), [{ upstream: 'qa-1-api', servers: [v2.addr], color: 'green', owner }]);
  // The stale server key went away in the same txn.
  const keys = (await rig.client.etcd.getAll().prefix(`${rig.prefix}/qa-1-api/servers/`).keys()).sort();
  assert.deepEqual(keys, [`${rig.prefix}/qa-1-api/servers/${v2.addr.replace(':', '-')}`]);
});

test('bad upstream names and server values written straight into etcd are never rendered', async () => {
  const before = conf();
  const invalidBefore = (await rig.proxy.metrics.invalidKeys.get()).values[0]?.value ?? 0;
  await rig.client.etcd.put(`${rig.prefix}/evil;name/servers/x`).value('127.0.0.1:1');
  await rig.client.etcd.put(`${rig.prefix}/qa-1-api/servers/evil`).value('127.0.0.1:1; } server { listen 9999; }');
  await rig.client.etcd.put(`${rig.prefix}/qa-1-api/servers/evil2`).value('127.0.0.1:70000');
  await until('invalid keys reported', async () => ((await rig.proxy.metrics.invalidKeys.get()).values[0]?.value ?? 0) >= invalidBefore + 3);
  await sleep(600);
  assert.equal(conf(), before, 'the rendered file did not change');
  assert.doesNotMatch(conf(), /evil|9999|70000/);
  assert.equal((await get(port, 'qa-1-api')).body, 'v2');
  await rig.client.etcd.delete().key(`${rig.prefix}/qa-1-api/servers/evil`).exec();
  await rig.client.etcd.delete().key(`${rig.prefix}/qa-1-api/servers/evil2`).exec();
  await rig.client.etcd.delete().prefix(`${rig.prefix}/evil;name/`).exec();
  await assert.rejects(rig.routes.setRoute({ upstream: 'qa-1-api', servers: ['1.2.3.4:5 down'], owner }), /invalid server/);
  await assert.rejects(rig.routes.setRoute({ upstream: 'Bad_Name', servers: [v1.addr], owner }), /invalid upstream/);
});

test('a route nginx -t rejects (unresolvable host) keeps its last good block and is reported; another route still updates', async () => {
  await rig.routes.setRoute({ upstream: 'other-svc', servers: [v1.addr], owner: { env: 'qa-2', service: 'web' } });
  await until('other-svc on v1', answers('other-svc', 'v1'));
  await sleep(400); // past the coalesce window: the next change applies on its own
  // Valid for berth (a host name) but nginx -t fails: the name does not resolve. In the same
  // burst, another route moves: it must apply.
  await rig.routes.setRoute({ upstream: 'qa-1-api', servers: ['no-such-host.invalid:80'], owner });
  await rig.routes.setRoute({ upstream: 'other-svc', servers: [v2.addr], owner: { env: 'qa-2', service: 'web' } });
  await until('other-svc moved to v2', answers('other-svc', 'v2'));
  assert.deepEqual(rig.proxy.rejectedUpstreams, ['qa-1-api']);
  assert.doesNotMatch(conf(), /no-such-host/);
  for (let i = 0; i < 10; i++) assert.equal((await get(port, 'qa-1-api')).body, 'v2', 'the rejected route keeps serving its last good servers');
  assert.ok(((await rig.proxy.metrics.routeRejections.get()).values[0]?.value ?? 0) >= 1);
  await rig.routes.setRoute({ upstream: 'qa-1-api', servers: [v1.addr], owner });
  await until('v1 after recovery', answers('qa-1-api', 'v1'));
  assert.deepEqual(rig.proxy.rejectedUpstreams, []);
  await rig.routes.deleteRoute('other-svc');
});

test('a route write from another owner is refused: the owner key is checked in the same transaction', async () => {
  await assert.rejects(rig.routes.setRoute({ upstream: 'qa-1-api', servers: [v2.addr], owner: { env: 'intruder', service: 'web' } }), /belongs to qa-1\/api/);
  await rig.routes.deleteRoute('qa-1-api', { env: 'intruder', service: 'web' });
  assert.equal((await rig.routes.getRoutes(['qa-1-api']))[0]?.owner?.env, 'qa-1', 'a delete by another owner removed nothing');
});

test('a burst of 50 key changes becomes a reload per coalesce window it spans (2 when it takes less than one)', async () => {
  await sleep(500);
  const before = reloads();
  const start = Date.now();
  for (let i = 0; i < 50; i++) {
    const servers = i % 2 === 0 ? [v2.addr] : [v1.addr, v2.addr];
    await rig.routes.setRoute({ upstream: `burst-${i % 5}`, servers, owner: { env: 'qa-1', service: `s${i % 5}` } });
  }
  await rig.routes.setRoute({ upstream: 'qa-1-api', servers: [v2.addr], owner });
  const burstMs = Date.now() - start;
  await until('burst applied', answers('qa-1-api', 'v2'));
  await sleep(800);
  const n = reloads() - before;
  // Leading edge: the first change applies at once, the rest of each 300 ms window in one more
  // reload. On a busy machine the 51 writes themselves may take longer than one window.
  const allowed = 2 + Math.floor(burstMs / 300);
  assert.ok(n >= 1 && n <= allowed, `${n} reloads for 51 changes written in ${burstMs} ms (at most ${allowed})`);
  // The last write to burst-4 (i = 49) holds both backends.
  const bodies = new Set<string>();
  for (let i = 0; i < 6; i++) bodies.add((await get(port, 'burst-4')).body);
  assert.deepEqual([...bodies].sort(), ['v1', 'v2']);
  assert.equal((await get(port, 'burst-3')).body, 'v2');
});

test('a route with no servers answers 503; a deleted route is gone (default server 404)', async () => {
  await rig.routes.setRoute({ upstream: 'empty-svc', servers: [], owner: { env: 'qa-1', service: 'empty' } });
  await until('503 for an empty route', async () => (await get(port, 'empty-svc')).status === 503);
  assert.doesNotMatch(conf(), /upstream empty-svc/);
  await rig.routes.deleteRoute('qa-1-api');
  await until('404 after delete', async () => (await get(port, 'qa-1-api')).status === 404);
  assert.doesNotMatch(conf(), /server_name qa-1-api;/);
  assert.equal((await rig.client.etcd.getAll().prefix(`${rig.prefix}/qa-1-api/`).keys()).length, 0);
});

test('the same route table never reloads twice', async () => {
  await sleep(500);
  const before = reloads();
  const routes = await rig.routes.listRoutes();
  const r = await rig.proxy.apply(routes);
  assert.equal(r, 'unchanged');
  assert.equal(reloads(), before);
});
