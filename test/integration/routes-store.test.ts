import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Route } from '../../src/store/routes-contract.js';
import { RouteStore } from '../../src/store/routes.js';
import { createClient, type EtcdClient } from '../../src/store/client.js';
import { TestEtcd } from '../support/etcd.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { sleep, until } from '../support/proxy-harness.js';

/** RouteStore on a REAL private etcd (127.0.0.1:23794; not the store tests' 23790 nor the lab's 2379). */
const etcd = new TestEtcd({ clientPort: 23794, peerPort: 23804 });
let client: EtcdClient;
const prefix = '/berth-routes-test/routes';
const owner = { env: 'qa-1', service: 'api' };

before(async () => {
  await etcd.start();
  client = etcd.client('/unused');
});
after(async () => {
  client?.close();
  await etcd.destroy();
});

test('setRoute replaces the whole server set in ONE revision; a watcher never sees a half-replaced or empty set', async () => {
  const store = new RouteStore(client, prefix);
  const seen: Route[][] = [];
  const w = store.watchRoutes((routes) => seen.push(routes));
  await until('initial list', () => seen.length > 0);
  await store.setRoute({ upstream: 'qa-1-api', servers: ['10.0.0.1:1', '10.0.0.2:1', '10.0.0.3:1'], color: 'blue', owner });
  const rev1 = (await client.etcd.get(`${prefix}/qa-1-api/owner`).exec()).header.revision;
  await store.setRoute({ upstream: 'qa-1-api', servers: ['10.0.0.4:2', '10.0.0.5:2'], color: 'green', owner });
  const rev2 = (await client.etcd.get(`${prefix}/qa-1-api/owner`).exec()).header.revision;
  assert.equal(BigInt(rev2) - BigInt(rev1), 1n, 'the replacement is one etcd revision (one txn)');
  await until('watch caught up', () => seen.at(-1)?.[0]?.color === 'green');
  for (const table of seen.slice(1)) {
    const r = table.find((x) => x.upstream === 'qa-1-api')!;
    assert.ok(r.servers.length > 0);
    const blue = r.servers.every((s) => s.endsWith(':1')) && r.color === 'blue';
    const green = r.servers.every((s) => s.endsWith(':2')) && r.color === 'green';
    assert.ok(blue || green, `mixed table ${JSON.stringify(r)}`);
  }
  assert.deepEqual(await store.listRoutes(), [{ upstream: 'qa-1-api', servers: ['10.0.0.4:2', '10.0.0.5:2'], color: 'green', owner }]);
  // Writing the same route again is a no-op (no new revision).
  await store.setRoute({ upstream: 'qa-1-api', servers: ['10.0.0.5:2', '10.0.0.4:2'], color: 'green', owner });
  assert.equal((await client.etcd.get(`${prefix}/qa-1-api/owner`).exec()).header.revision, rev2);
  await w.close();
});

test('deleteRoute removes every key; keys outside berth\'s own (servers/color/owner) survive setRoute', async () => {
  const store = new RouteStore(client, prefix);
  await client.etcd.put(`${prefix}/qa-1-api/custom`).value('kept');
  await store.setRoute({ upstream: 'qa-1-api', servers: ['10.0.0.9:9'], owner });
  assert.equal(await client.etcd.get(`${prefix}/qa-1-api/custom`).string(), 'kept');
  assert.equal(await client.etcd.get(`${prefix}/qa-1-api/color`).string(), null, 'no colour: the colour key is removed');
  await store.deleteRoute('qa-1-api');
  assert.equal((await client.etcd.getAll().prefix(`${prefix}/qa-1-api/`).keys()).length, 0);
  assert.deepEqual(await store.listRoutes(), []);
});

test('watchRoutes relists after its stream breaks (etcd restart) and catches up with changes made meanwhile', async () => {
  const store = new RouteStore(client, prefix);
  const restarts: string[] = [];
  let latest: Route[] = [];
  const w = store.watchRoutes((r) => (latest = r), { onRestart: (reason) => restarts.push(reason) });
  await store.setRoute({ upstream: 'a-svc', servers: ['10.0.0.1:80'], owner });
  await until('a-svc seen', () => latest.some((r) => r.upstream === 'a-svc'));
  await etcd.stop();
  await sleep(300);
  await etcd.start();
  // A change the watcher could only learn about after re-establishing.
  const writer = etcd.client('/unused');
  await new RouteStore(writer, prefix).setRoute({ upstream: 'a-svc', servers: ['10.0.0.2:80'], owner });
  await new RouteStore(writer, prefix).setRoute({ upstream: 'b-svc', servers: ['10.0.0.3:80'], owner });
  writer.close();
  await until('caught up', () => latest.find((r) => r.upstream === 'a-svc')?.servers[0] === '10.0.0.2:80' && latest.some((r) => r.upstream === 'b-svc'), 20_000);
  assert.ok(restarts.length >= 1, 'the restart was reported');
  await w.close();
});

test('watchRoutes relists when the revision it must resume from was compacted; a route deleted meanwhile is gone', async () => {
  // The watcher reads through a proxy that is cut while the history it would resume from is
  // written and compacted away: it can only catch up by listing again.
  const proxy = new TcpProxy(23798, etcd.clientPort);
  await proxy.resume();
  const reader = createClient({ endpoints: [proxy.endpoint], prefix: '/unused' });
  const store = new RouteStore(client, prefix);
  await store.setRoute({ upstream: 'c-svc', servers: ['10.0.1.1:80'], owner });
  await store.setRoute({ upstream: 'd-svc', servers: ['10.0.1.2:80'], owner });
  const restarts: string[] = [];
  let latest: Route[] = [];
  const w = new RouteStore(reader, prefix).watchRoutes((r) => (latest = r), { onRestart: (reason) => restarts.push(reason) });
  try {
    await until('listed', () => latest.some((r) => r.upstream === 'd-svc'));
    await proxy.cut();
    await store.deleteRoute('d-svc');
    for (let i = 0; i < 5; i++) await store.setRoute({ upstream: 'c-svc', servers: [`10.0.2.${i + 1}:80`], owner });
    const rev = (await client.etcd.get('x').exec()).header.revision;
    await client.etcd.kv.compact({ revision: rev, physical: true } as never);
    await proxy.resume();
    await until('relisted', () => restarts.includes('compacted'), 20_000);
    await until('caught up', () => latest.find((r) => r.upstream === 'c-svc')?.servers[0] === '10.0.2.5:80');
    assert.equal(latest.find((r) => r.upstream === 'd-svc'), undefined, 'the route deleted while the watch was away is gone');
    await store.setRoute({ upstream: 'c-svc', servers: ['10.0.3.1:80'], owner });
    await until('watching again after the relist', () => latest.find((r) => r.upstream === 'c-svc')?.servers[0] === '10.0.3.1:80');
  } finally {
    await w.close();
    reader.close();
    await proxy.cut();
  }
});

test('getRoutes reads several routes in one round trip; the write after it uses that read, and one that went stale is read again', async () => {
  const store = new RouteStore(client, prefix);
  const other = { env: 'qa-2', service: 'web' };
  await store.setRoute({ upstream: 'qa-2-web', servers: ['10.0.1.1:1'], owner: other });
  await store.setRoute({ upstream: 'qa-2-db', servers: ['10.0.1.2:1'], owner: { env: 'qa-2', service: 'db' } });
  const read = await store.getRoutes(['qa-2-web', 'qa-2-db', 'qa-2-none']);
  assert.deepEqual(read.map((r) => [r.upstream, r.servers]), [['qa-2-db', ['10.0.1.2:1']], ['qa-2-web', ['10.0.1.1:1']]]);
  // Between that read and the write, someone else changes a server key the write replaces: the
  // write's first transaction fails its compare, the retry reads again, and the result is exact.
  await client.etcd.delete().key(`${prefix}/qa-2-web/servers/10.0.1.1-1`);
  await client.etcd.put(`${prefix}/qa-2-web/servers/10.0.1.9-1`).value('10.0.1.9:1');
  await store.setRoute({ upstream: 'qa-2-web', servers: ['10.0.1.3:1'], owner: other });
  assert.deepEqual((await store.getRoutes(['qa-2-web']))[0]?.servers, ['10.0.1.3:1']);
  // An owner taken meanwhile is still a conflict, not overwritten.
  await store.getRoutes(['qa-2-db']);
  await client.etcd.put(`${prefix}/qa-2-db/owner`).value('qa-3/db');
  await assert.rejects(store.setRoute({ upstream: 'qa-2-db', servers: ['10.0.1.4:1'], owner: { env: 'qa-2', service: 'db' } }), /qa-3\/db/);
  await store.deleteRoute('qa-2-web');
  await store.deleteRoute('qa-2-db');
});

test('setRoutes writes several routes in one revision; a route another owner holds is returned, the others still written', async () => {
  const store = new RouteStore(client, prefix);
  const mine = (service: string, servers: string[]) => ({ upstream: `qa-5-${service}`, servers, owner: { env: 'qa-5', service } });
  assert.deepEqual(await store.setRoutes([mine('a', []), mine('b', [])]), []);
  const before = (await client.etcd.get(`${prefix}/qa-5-a/owner`).exec()).header.revision;
  await store.getRoutes(['qa-5-a', 'qa-5-b']);
  assert.deepEqual(await store.setRoutes([mine('a', ['10.0.5.1:1']), mine('b', ['10.0.5.2:1', '10.0.5.3:1'])]), []);
  const after = (await client.etcd.get(`${prefix}/qa-5-a/owner`).exec()).header.revision;
  assert.equal(BigInt(after) - BigInt(before), 1n, 'both routes in one revision');
  assert.deepEqual((await store.getRoutes(['qa-5-a', 'qa-5-b'])).map((r) => r.servers), [['10.0.5.1:1'], ['10.0.5.2:1', '10.0.5.3:1']]);

  await store.setRoute({ upstream: 'qa-5-c', servers: [], owner: { env: 'qa-6', service: 'c' } });
  const refused = await store.setRoutes([mine('a', ['10.0.5.9:1']), mine('c', ['10.0.5.8:1'])]);
  assert.deepEqual(refused.map((e) => [e.upstream, e.owner]), [['qa-5-c', 'qa-6/c']]);
  assert.deepEqual((await store.getRoutes(['qa-5-a']))[0]?.servers, ['10.0.5.9:1'], 'the route it owns is written');
  assert.equal(await client.etcd.get(`${prefix}/qa-5-c/owner`).string(), 'qa-6/c');
  for (const u of ['qa-5-a', 'qa-5-b', 'qa-5-c']) await store.deleteRoute(u);
});
