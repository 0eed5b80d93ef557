import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { HISTORY_LIMIT, NginxProxy, type AppliedRoutes, type RouteSource } from '../../src/routing/proxy.js';
import type { Route } from '../../src/store/routes-contract.js';
import { renderNginx } from '../../src/routing/nginx-render.js';

/**
 * NginxProxy with a fake route source and shell commands that log instead of touching nginx. The
 * check fails for the whole file when FAIL exists, and for any file naming `bad.invalid` (an
 * unresolvable host, as nginx -t sees it); the reload fails while RELOAD_FAIL exists.
 */
function setup(opts: { coalesceMs?: number; initial?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-proxy-unit-'));
  const conf = join(dir, 'upstreams.conf');
  const log = join(dir, 'calls.log');
  const fail = join(dir, 'FAIL');
  const reloadFail = join(dir, 'RELOAD_FAIL');
  writeFileSync(conf, opts.initial ?? 'old\n');
  let push: (r: Route[], revision?: string) => void = () => {};
  const source: RouteSource = {
    watchRoutes(cb) {
      push = (r, revision = '1') => cb(r, revision);
      return { close: async () => {} };
    },
  };
  const acks: AppliedRoutes[] = [];
  const proxy = new NginxProxy(source, {
    confPath: conf,
    listen: '127.0.0.1:8080',
    checkCmd: `echo check >> ${log}; test ! -e ${fail} && ! grep -q bad.invalid ${conf}`,
    reloadCmd: `echo reload >> ${log}; test ! -e ${reloadFail}`,
    coalesceMs: opts.coalesceMs ?? 50,
    retryBaseMs: 1_000,
    onApplied: (a) => acks.push(a),
    log: pino({ level: 'silent' }),
  });
  proxy.start();
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  return { dir, conf, fail, reloadFail, proxy, acks, push: (r: Route[], revision?: string) => push(r, revision), calls, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Lets the proxy finish its bookkeeping after an apply resolved (setImmediate is not mocked). */
const settled = () => new Promise((r) => setImmediate(r));

const route = (servers: string[]): Route[] => [{ upstream: 'qa-1-api', servers }];

test('leading edge: the first change applies at once; a burst during the window becomes one more apply', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const s = setup();
  try {
    const first = s.proxy.nextApply();
    s.push(route(['10.0.0.9:80']));
    assert.equal(await first, 'reloaded', 'applied without any tick of the clock');
    assert.deepEqual(s.calls(), ['check', 'reload']);
    const second = s.proxy.nextApply();
    for (let i = 0; i < 50; i++) s.push(route([`10.0.0.${(i % 9) + 1}:80`]));
    t.mock.timers.tick(49);
    assert.deepEqual(s.calls(), ['check', 'reload'], 'nothing more within the window');
    t.mock.timers.tick(1);
    assert.equal(await second, 'reloaded');
    assert.deepEqual(s.calls(), ['check', 'reload', 'check', 'reload']);
    assert.match(readFileSync(s.conf, 'utf8'), /server 10\.0\.0\.5:80 /); // the last of the burst: i = 49 → 49 % 9 + 1 = 5
    t.mock.timers.tick(1_000);
    const again = s.proxy.nextApply();
    s.push(route(['10.0.0.5:80']));
    assert.equal(await again, 'unchanged');
    assert.equal(s.calls().length, 4);
    assert.ok(s.proxy.ready);
    assert.deepEqual(readdirSync(s.dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
  } finally {
    await s.proxy.stop();
    s.cleanup();
  }
});

test('a continuous stream of changes applies once per window, always the latest table', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const s = setup({ coalesceMs: 100 });
  try {
    for (let i = 0; i < 15; i++) {
      const applied = i % 5 === 0 ? s.proxy.nextApply() : undefined;
      s.push(route([`10.0.1.${i + 1}:80`]));
      if (applied) assert.equal(await applied, 'reloaded');
      t.mock.timers.tick(20);
    }
    const last = s.proxy.nextApply();
    t.mock.timers.tick(100);
    assert.equal(await last, 'reloaded');
    assert.equal(s.calls().filter((c) => c === 'reload').length, 4, '300 ms of changes, 100 ms window: at 0, 100, 200, 300');
    assert.match(readFileSync(s.conf, 'utf8'), /server 10\.0\.1\.15:80 /, 'the flush carries the latest change');
  } finally {
    await s.proxy.stop();
    s.cleanup();
  }
});

test('a route nginx rejects is left at its last good block and reported; the other routes apply', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const s = setup();
  const table = (api: string, web: string): Route[] => [
    { upstream: 'qa-1-api', servers: [api] },
    { upstream: 'qa-1-web', servers: [web] },
  ];
  try {
    let a = s.proxy.nextApply();
    s.push(table('10.0.0.1:80', '10.0.0.2:80'), '10');
    assert.equal(await a, 'reloaded');
    t.mock.timers.tick(100);
    a = s.proxy.nextApply();
    s.push(table('bad.invalid:80', '10.0.0.3:80'), '11');
    assert.equal(await a, 'reloaded');
    const text = readFileSync(s.conf, 'utf8');
    assert.match(text, /server 10\.0\.0\.3:80 /, 'the good route moved');
    assert.match(text, /server 10\.0\.0\.1:80 /, 'the bad route kept its last good block');
    assert.doesNotMatch(text, /bad\.invalid/);
    assert.deepEqual(s.proxy.rejectedUpstreams, ['qa-1-api']);
    assert.deepEqual(s.acks.at(-1), { revision: '11', rejected: ['qa-1-api'] });
    const m = await s.proxy.metrics.registry.metrics();
    assert.match(m, /berth_proxy_routes_rejected 1/);
    assert.match(m, /berth_proxy_route_rejections_total 1/);
    // The same rejected keys again: no check at all.
    t.mock.timers.tick(100);
    const checks = s.calls().filter((c) => c === 'check').length;
    a = s.proxy.nextApply();
    s.push(table('bad.invalid:80', '10.0.0.3:80'), '12');
    assert.equal(await a, 'unchanged');
    assert.equal(s.calls().filter((c) => c === 'check').length, checks);
    // Fixed: applies, no longer reported.
    t.mock.timers.tick(100);
    a = s.proxy.nextApply();
    s.push(table('10.0.0.4:80', '10.0.0.3:80'), '13');
    assert.equal(await a, 'reloaded');
    assert.deepEqual(s.proxy.rejectedUpstreams, []);
    assert.deepEqual(s.acks.at(-1), { revision: '13', rejected: [] });
  } finally {
    await s.proxy.stop();
    s.cleanup();
  }
});

test('a proxy that starts with a rejected route keeps that route as the file on disk has it', async () => {
  const good = [{ upstream: 'qa-1-api', servers: ['10.0.0.1:80'] }];
  const s = setup({ initial: renderNginx(good, { listen: '127.0.0.1:8080' }) });
  try {
    const a = s.proxy.nextApply();
    s.push([{ upstream: 'qa-1-api', servers: ['bad.invalid:80'] }, { upstream: 'qa-1-web', servers: ['10.0.0.2:80'] }]);
    assert.equal(await a, 'reloaded');
    const text = readFileSync(s.conf, 'utf8');
    assert.match(text, /server 10\.0\.0\.1:80 /, 'the bad route keeps the block nginx serves');
    assert.match(text, /server 10\.0\.0\.2:80 /);
    assert.deepEqual(s.proxy.rejectedUpstreams, ['qa-1-api']);
  } finally {
    await s.proxy.stop();
    s.cleanup();
  }
});

test('a check that fails even for the served routes keeps the last good file and blames no route', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const s = setup();
  try {
    let a = s.proxy.nextApply();
    s.push(route(['10.0.0.1:80']));
    assert.equal(await a, 'reloaded');
    const good = readFileSync(s.conf, 'utf8');
    writeFileSync(s.fail, '');
    t.mock.timers.tick(100);
    a = s.proxy.nextApply();
    s.push(route(['10.0.0.2:80']));
    assert.equal(await a, 'check_failed');
    assert.equal(readFileSync(s.conf, 'utf8'), good);
    assert.deepEqual(s.proxy.rejectedUpstreams, []);
    assert.ok(!s.calls().slice(2).includes('reload'));
    const text = await s.proxy.metrics.registry.metrics();
    assert.match(text, /berth_proxy_reloads_total\{result="check_failed"\} 1/);
    assert.match(text, /berth_proxy_config_current 0/);
    rmSync(s.fail);
    t.mock.timers.tick(100);
    a = s.proxy.nextApply();
    s.push(route(['10.0.0.3:80']));
    assert.equal(await a, 'reloaded');
    assert.match(await s.proxy.metrics.registry.metrics(), /berth_proxy_config_current 1/);
  } finally {
    await s.proxy.stop();
    s.cleanup();
  }
});

test('a failed reload is retried with backoff until it succeeds; only then is the table acknowledged', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const s = setup();
  try {
    writeFileSync(s.reloadFail, '');
    let a = s.proxy.nextApply();
    s.push(route(['10.0.0.1:80']), '7');
    assert.equal(await a, 'reload_failed');
    await settled();
    assert.deepEqual(s.acks, []);
    a = s.proxy.nextApply();
    t.mock.timers.tick(999);
    t.mock.timers.tick(1);
    assert.equal(await a, 'reload_failed', 'retried after 1 s');
    await settled();
    a = s.proxy.nextApply();
    t.mock.timers.tick(1_999);
    assert.equal(s.calls().filter((c) => c === 'reload').length, 2, 'the second retry waits 2 s');
    rmSync(s.reloadFail);
    t.mock.timers.tick(1);
    assert.equal(await a, 'reloaded');
    assert.deepEqual(s.acks, [{ revision: '7', rejected: [] }]);
  } finally {
    await s.proxy.stop();
    s.cleanup();
  }
});

test('stop flushes a pending burst', async () => {
  const s = setup({ coalesceMs: 5_000 });
  s.push(route(['10.0.0.7:80']));
  await s.proxy.stop();
  assert.match(readFileSync(s.conf, 'utf8'), /10\.0\.0\.7:80/);
  s.cleanup();
});

test('the apply history keeps the last HISTORY_LIMIT results only', async () => {
  const s = setup();
  try {
    assert.equal(await s.proxy.apply(route(['10.0.0.1:80'])), 'reloaded');
    for (let i = 0; i < HISTORY_LIMIT + 10; i++) await s.proxy.apply(route(['10.0.0.1:80']));
    assert.equal(s.proxy.history.length, HISTORY_LIMIT);
    assert.ok(s.proxy.history.every((h) => h.result === 'unchanged'), 'the oldest entry (the reload) went first');
  } finally {
    await s.proxy.stop();
    s.cleanup();
  }
});
