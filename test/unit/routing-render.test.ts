import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBlocks, renderBlocks, renderNginx } from '../../src/routing/nginx-render.js';
import { decodeRoutes, isValidServer, routesPrefixFrom, serverId } from '../../src/store/routes.js';

const listen = '127.0.0.1:8080';

test('render is deterministic: routes and servers sorted, duplicates dropped', () => {
  const a = renderNginx(
    [
      { upstream: 'b-svc', servers: ['10.0.0.2:80', '10.0.0.1:80', '10.0.0.1:80'] },
      { upstream: 'a-svc', servers: ['h1:81'] },
    ],
    { listen },
  );
  const b = renderNginx(
    [
      { upstream: 'a-svc', servers: ['h1:81'] },
      { upstream: 'b-svc', servers: ['10.0.0.1:80', '10.0.0.2:80'] },
    ],
    { listen },
  );
  assert.equal(a, b);
  assert.ok(a.indexOf('upstream a-svc') < a.indexOf('upstream b-svc'));
  assert.equal(a.match(/server 10\.0\.0\.1:80 /g)?.length, 1);
  assert.match(a, /server_name b-svc;/);
  assert.match(a, /proxy_pass http:\/\/b-svc;/);
  assert.match(a, /proxy_next_upstream error timeout http_502 http_503;/);
  assert.match(a, /listen 127\.0\.0\.1:8080;/);
});

test('a route with no servers answers 503 and has no upstream block', () => {
  const out = renderNginx([{ upstream: 'qa-1-api', servers: [] }], { listen });
  assert.doesNotMatch(out, /upstream qa-1-api/);
  assert.match(out, /server_name qa-1-api;[\s\S]*return 503;/);
});

test('no routes renders just the header (no default server: the main config owns it)', () => {
  const out = renderNginx([], { listen });
  assert.doesNotMatch(out, /\bserver\s*\{/);
  assert.doesNotMatch(out, /default_server/);
});

test('invalid upstreams and servers are never rendered', () => {
  const out = renderNginx(
    [
      { upstream: 'evil; }', servers: ['10.0.0.1:80'] },
      { upstream: 'ok', servers: ['10.0.0.1:80; evil', '10.0.0.2:99999', '10.0.0.3:80'] },
    ],
    { listen },
  );
  assert.doesNotMatch(out, /evil/);
  assert.doesNotMatch(out, /99999/);
  assert.match(out, /server 10\.0\.0\.3:80 /);
  assert.throws(() => renderNginx([], { listen: '1.2.3.4:80; x' }), /invalid listen/);
});

test('server values: IPv4 or host name, port 1-65535', () => {
  for (const ok of ['10.77.0.11:30001', 'localhost:1', 'node-1.example:65535', '255.255.255.255:80']) assert.ok(isValidServer(ok), ok);
  for (const bad of ['10.77.0.11', '10.77.0.11:0', '10.77.0.11:65536', '10.77.0.11:080', '256.1.1.1:80', 'a b:80', 'h:80;', '[::1]:80', '-h:80', 'h:80 backup', '']) {
    assert.ok(!isValidServer(bad), bad);
  }
  assert.equal(serverId('10.77.0.11:30001'), '10.77.0.11-30001');
});

test('decodeRoutes validates every key and reports what it skips', () => {
  const skipped: string[] = [];
  const routes = decodeRoutes(
    '/r',
    [
      ['/r/qa-1-api/servers/a', '10.0.0.2:80'],
      ['/r/qa-1-api/servers/b', '10.0.0.1:80'],
      ['/r/qa-1-api/servers/c', '10.0.0.1:80 down'],
      ['/r/qa-1-api/color', 'green'],
      ['/r/qa-1-api/owner', 'qa-1/api'],
      ['/r/Bad Name/servers/a', '10.0.0.1:80'],
      ['/r/qa-2-api/color', 'purple'],
      ['/r/qa-2-api/owner', 'qa-2/api/x'],
      ['/other/x/servers/a', '10.0.0.1:80'],
    ],
    (k) => skipped.push(k),
  );
  assert.deepEqual(routes, [
    { upstream: 'qa-1-api', servers: ['10.0.0.1:80', '10.0.0.2:80'], color: 'green', owner: { env: 'qa-1', service: 'api' } },
    { upstream: 'qa-2-api', servers: [] },
  ]);
  assert.deepEqual(skipped.sort(), ['/r/Bad Name/servers/a', '/r/qa-1-api/servers/c', '/r/qa-2-api/color', '/r/qa-2-api/owner']);
});

test('routes prefix: flag over BERTH_ROUTES_PREFIX over <store prefix>/routes over /berth/routes', () => {
  assert.equal(routesPrefixFrom({}, {}), '/berth/routes');
  assert.equal(routesPrefixFrom({}, { BERTH_PREFIX: '/x' }), '/x/routes');
  assert.equal(routesPrefixFrom({ prefix: 'y/' }, { BERTH_PREFIX: '/x' }), '/y/routes');
  assert.equal(routesPrefixFrom({ routesPrefix: '' }, { BERTH_PREFIX: '/x', BERTH_ROUTES_PREFIX: '' }), '/x/routes');
  assert.equal(routesPrefixFrom({}, { BERTH_PREFIX: '/x', BERTH_ROUTES_PREFIX: '/services/' }), '/services');
  assert.equal(routesPrefixFrom({ routesPrefix: 'svc' }, { BERTH_ROUTES_PREFIX: '/services' }), '/svc');
});

test('parseBlocks reads back exactly the blocks of a rendered file, and nothing else', () => {
  const routes = [
    { upstream: 'qa-1-api', servers: ['10.0.0.1:80', '10.0.0.2:80'] },
    { upstream: 'qa-1-empty', servers: [] },
  ];
  const text = renderNginx(routes, { listen });
  assert.deepEqual(parseBlocks(text), renderBlocks(routes, { listen }));
  assert.deepEqual(parseBlocks(renderNginx([], { listen })), new Map());
  assert.equal(parseBlocks('server { listen 80; }\n'), undefined, 'a file berth did not write');
  assert.equal(parseBlocks(`${text}\nupstream by-hand { server 10.0.0.9:80; }\n`), undefined, 'a block without a server_name');
});
