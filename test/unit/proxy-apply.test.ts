import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { HISTORY_LIMIT, NginxProxy, type RouteSource } from '../../src/routing/proxy.js';
import type { Route } from '../../src/store/routes-contract.js';

/** NginxProxy with a fake route source and shell commands that log instead of touching nginx. */
function setup(opts: { coalesceMs?: number; maxDelayMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'berth-proxy-unit-'));
  const conf = join(dir, 'upstreams.conf');
  const log = join(dir, 'calls.log');
  const fail = join(dir, 'FAIL');
  writeFileSync(conf, 'old\n');
  let push: (r: Route[]) => void = () => {};
  const source: RouteSource = {
    watchRoutes(cb) {
      push = (r) => cb(r, '1');
      return { close: async () => {} };
    },
  };
  const proxy = new NginxProxy(source, {
    confPath: conf,
    listen: '127.0.0.1:8080',
    checkCmd: `echo check >> ${log}; test ! -e ${fail}`,
    reloadCmd: `echo reload >> ${log}`,
    coalesceMs: opts.coalesceMs ?? 50,
    ...(opts.maxDelayMs ? { maxDelayMs: opts.maxDelayMs } : {}),
    log: pino({ level: 'silent' }),
  });
  proxy.start();
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
  return { dir, conf, fail, proxy, push: (r: Route[]) => push(r), calls, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const route = (servers: string[]): Route[] => [{ upstream: 'qa-1-api', servers }];

test('a burst is coalesced into one check + reload; the same table again does nothing', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const s = setup();
  try {
    const applied = s.proxy.nextApply();
    for (let i = 0; i < 50; i++) s.push(route([`10.0.0.${(i % 9) + 1}:80`]));
    t.mock.timers.tick(50);
    assert.equal(await applied, 'reloaded');
    assert.deepEqual(s.calls(), ['check', 'reload']);
    assert.match(readFileSync(s.conf, 'utf8'), /server 10\.0\.0\.5:80 /); // the last of the burst: i = 49 → 49 % 9 + 1 = 5
    const again = s.proxy.nextApply();
    s.push(route(['10.0.0.5:80']));
    t.mock.timers.tick(50);
    assert.equal(await again, 'unchanged');
    assert.deepEqual(s.calls(), ['check', 'reload']);
    assert.ok(s.proxy.ready);
    assert.deepEqual(readdirSync(s.dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
  } finally {
    await s.proxy.stop();
    s.cleanup();
  }
});

test('a failed check restores the last good file, does not reload, and is not retried for the same table', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const s = setup();
  try {
    let a = s.proxy.nextApply();
    s.push(route(['10.0.0.1:80']));
    t.mock.timers.tick(50);
    assert.equal(await a, 'reloaded');
    const good = readFileSync(s.conf, 'utf8');
    writeFileSync(s.fail, '');
    a = s.proxy.nextApply();
    s.push(route(['10.0.0.2:80']));
    t.mock.timers.tick(50);
    assert.equal(await a, 'check_failed');
    assert.equal(readFileSync(s.conf, 'utf8'), good);
    a = s.proxy.nextApply();
    s.push(route(['10.0.0.2:80']));
    t.mock.timers.tick(50);
    assert.equal(await a, 'rejected_again');
    assert.deepEqual(s.calls(), ['check', 'reload', 'check']);
    const text = await s.proxy.metrics.registry.metrics();
    assert.match(text, /berth_proxy_reloads_total\{result="check_failed"\} 1/);
    assert.match(text, /berth_proxy_config_current 0/);
    rmSync(s.fail);
    a = s.proxy.nextApply();
    s.push(route(['10.0.0.3:80']));
    t.mock.timers.tick(50);
    assert.equal(await a, 'reloaded');
    assert.match(await s.proxy.metrics.registry.metrics(), /berth_proxy_config_current 1/);
  } finally {
    await s.proxy.stop();
    s.cleanup();
  }
});

test('a continuous stream of changes is flushed at maxDelay at the latest', async (t) => {
  // Mocked time: the coalescing timers and Date.now move only when the test ticks.
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const s = setup({ coalesceMs: 100, maxDelayMs: 300 });
  const renders = async () => (await s.proxy.metrics.renderSeconds.get()).values.find((v) => v.metricName === 'berth_proxy_render_seconds_count')?.value ?? 0;
  try {
    const applied = s.proxy.nextApply();
    // A change every 20 ms from 0 to 280 ms: never 100 ms of quiet, so only maxDelay can flush.
    for (let i = 0; i < 15; i++) {
      s.push(route([`10.0.1.${i + 1}:80`]));
      t.mock.timers.tick(i < 14 ? 20 : 19);
    }
    assert.equal(await renders(), 0, 'nothing flushed before maxDelay (299 ms)');
    t.mock.timers.tick(1);
    assert.equal(await renders(), 1, 'flushed at maxDelay (300 ms)');
    assert.equal(await applied, 'reloaded');
    assert.match(readFileSync(s.conf, 'utf8'), /server 10\.0\.1\.15:80 /, 'the flush carries the latest change');
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
