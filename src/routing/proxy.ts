import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Route } from '../store/routes-contract.js';
import type { RouteWatch, RouteWatchOptions } from '../store/routes.js';
import { renderNginx } from './nginx-render.js';

/**
 * `berth proxy`: the built-in confd. Watches the route keys, renders the nginx snippet, and when
 * the rendered text differs from the file on disk: writes it atomically (tmp + rename), runs the
 * check command (default `nginx -t`: the WHOLE config that includes the snippet), then the reload
 * command (default `nginx -s reload`, graceful). A failed check puts the previous file back and
 * keeps it; the same rejected text is not retried until the routes change again.
 *
 * Bursts are coalesced: a flush runs `coalesceMs` after the last change, and at the latest
 * `maxDelayMs` after the first change of a burst, so 50 quick key changes become one reload.
 */
export interface RouteSource {
  watchRoutes(onRoutes: (routes: Route[], revision: string) => void, opts?: RouteWatchOptions): RouteWatch;
}

export interface ProxyOptions {
  confPath: string;
  listen: string;
  checkCmd: string;
  reloadCmd: string;
  coalesceMs: number;
  /** Upper bound on how long a continuous burst may postpone a flush. Default max(5×coalesce, 1s). */
  maxDelayMs?: number;
  commandTimeoutMs?: number;
  /**
   * nginx's pid file (`--nginx-pid-file`, BERTH_NGINX_PID_FILE). When set, a reload counts as done
   * only once every worker of the previous generation stopped accepting connections, so "reloaded"
   * means every new connection gets the new config (no old-config answer after that point).
   */
  pidFile?: string;
  log: Logger;
  metrics?: ProxyMetrics;
}

export type ApplyResult = 'unchanged' | 'reloaded' | 'check_failed' | 'reload_failed' | 'write_failed' | 'rejected_again';

export interface ProxyMetrics {
  registry: Registry;
  reloads: Counter<'result'>;
  renderSeconds: Histogram;
  applySeconds: Histogram;
  routes: Gauge;
  invalidKeys: Counter;
  watchRestarts: Counter<'reason'>;
  lastReloadSuccess: Gauge;
  configGood: Gauge;
}

export function createProxyMetrics(registry = new Registry()): ProxyMetrics {
  collectDefaultMetrics({ register: registry, prefix: 'berth_proxy_' });
  const registers = [registry];
  return {
    registry,
    reloads: new Counter({
      name: 'berth_proxy_reloads_total',
      help: 'nginx config applications by result (reloaded, check_failed, reload_failed, write_failed)',
      labelNames: ['result'],
      registers,
    }),
    renderSeconds: new Histogram({
      name: 'berth_proxy_render_seconds',
      help: 'Time to render the nginx snippet from the route table',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
      registers,
    }),
    applySeconds: new Histogram({
      name: 'berth_proxy_apply_seconds',
      help: 'Time to write, check and reload nginx',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    routes: new Gauge({ name: 'berth_proxy_routes', help: 'Routes in the last rendered file', registers }),
    invalidKeys: new Counter({ name: 'berth_proxy_invalid_keys_total', help: 'Route keys skipped because their value would break nginx', registers }),
    watchRestarts: new Counter({ name: 'berth_proxy_watch_restarts_total', help: 'Route watch re-established (relist)', labelNames: ['reason'], registers }),
    lastReloadSuccess: new Gauge({ name: 'berth_proxy_last_reload_success_timestamp_seconds', help: 'Unix time of the last successful reload', registers }),
    configGood: new Gauge({ name: 'berth_proxy_config_current', help: '1 when nginx serves the latest route table, 0 when the last check or reload failed', registers }),
  };
}

export function runShell(cmd: string, timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', cmd], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (!err) resolve({ code: 0, output });
      else resolve({ code: typeof err.code === 'number' ? err.code : 1, output: output || err.message });
    });
  });
}

async function readOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Worker pids of the nginx master in `pidFile` that still accept (not "shutting down"). */
export async function nginxWorkers(pidFile: string): Promise<number[]> {
  const master = Number((await readOrUndefined(pidFile))?.trim());
  if (!Number.isInteger(master) || master <= 0) return [];
  const out: number[] = [];
  for (const e of await fsp.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    const stat = await readOrUndefined(`/proc/${e}/stat`).catch(() => undefined);
    if (!stat) continue;
    // pid (comm) state ppid ...: comm may contain spaces, so parse after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === master && (await acceptingWorker(Number(e)))) out.push(Number(e));
  }
  return out;
}

async function acceptingWorker(pid: number): Promise<boolean> {
  const cmdline = await readOrUndefined(`/proc/${pid}/cmdline`).catch(() => undefined);
  return cmdline !== undefined && cmdline.includes('worker process') && !cmdline.includes('shutting down');
}

async function oldWorkersRetired(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let alive = false;
    for (const p of pids) if (await acceptingWorker(p)) alive = true;
    if (!alive) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function writeAtomic(file: string, content: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await fsp.writeFile(tmp, content, { mode: 0o644 });
  await fsp.rename(tmp, file);
}

export class NginxProxy {
  readonly metrics: ProxyMetrics;
  private watch: RouteWatch | undefined;
  private latest: Route[] | undefined;
  private firstPending = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private stopped = false;
  private rejected: string | undefined;
  private readonly maxDelayMs: number;
  /** Results of every apply, for tests and the bench. */
  readonly history: { at: number; result: ApplyResult }[] = [];
  private synced = false;
  private listeners: ((r: ApplyResult) => void)[] = [];

  constructor(
    private readonly source: RouteSource,
    private readonly opts: ProxyOptions,
  ) {
    this.metrics = opts.metrics ?? createProxyMetrics();
    this.maxDelayMs = opts.maxDelayMs ?? Math.max(opts.coalesceMs * 5, 1_000);
    renderNginx([], { listen: opts.listen }); // validates the listen address up front
  }

  /** True once the first route table was applied (or found unchanged). */
  get ready(): boolean {
    return this.synced;
  }

  start(): void {
    this.watch = this.source.watchRoutes((routes) => this.onRoutes(routes), {
      onInvalid: (key, reason) => {
        this.metrics.invalidKeys.inc();
        this.opts.log.warn({ key, reason }, 'route key skipped: its value would break nginx');
      },
      onRestart: (reason, err) => {
        this.metrics.watchRestarts.inc({ reason });
        this.opts.log.warn({ reason, err: err.message }, 'route watch restarted; relisting');
      },
    });
  }

  /** Resolves on the next apply (any result). */
  nextApply(): Promise<ApplyResult> {
    return new Promise((r) => this.listeners.push(r));
  }

  onRoutes(routes: Route[]): void {
    if (this.stopped) return;
    const now = Date.now();
    if (this.latest === undefined || this.timer === undefined) this.firstPending = now;
    this.latest = routes;
    if (this.timer) clearTimeout(this.timer);
    const due = Math.min(now + this.opts.coalesceMs, this.firstPending + this.maxDelayMs);
    this.timer = setTimeout(() => this.flush(), Math.max(0, due - now));
  }

  private flush(): void {
    this.timer = undefined;
    if (this.running) {
      this.dirty = true;
      return;
    }
    const routes = this.latest;
    if (!routes) return;
    this.running = this.apply(routes)
      .then(() => undefined)
      .catch((err: unknown) => this.opts.log.error({ err: (err as Error).message }, 'apply failed'))
      .finally(() => {
        this.running = undefined;
        if (this.dirty && !this.stopped) {
          this.dirty = false;
          this.flush();
        }
      });
  }

  private record(result: ApplyResult): ApplyResult {
    this.history.push({ at: Date.now(), result });
    if (result !== 'unchanged' && result !== 'rejected_again') this.metrics.reloads.inc({ result });
    const ls = this.listeners;
    this.listeners = [];
    for (const l of ls) l(result);
    return result;
  }

  /** Render → compare → write → check → reload (or restore). Exposed for tests. */
  async apply(routes: Route[]): Promise<ApplyResult> {
    const { log, confPath } = this.opts;
    const endRender = this.metrics.renderSeconds.startTimer();
    const text = renderNginx(routes, { listen: this.opts.listen });
    endRender();
    const endApply = this.metrics.applySeconds.startTimer();
    try {
      const previous = await readOrUndefined(confPath);
      if (previous === text) {
        this.rejected = undefined;
        this.synced = true;
        this.metrics.configGood.set(1);
        return this.record('unchanged');
      }
      if (text === this.rejected) return this.record('rejected_again');
      try {
        await writeAtomic(confPath, text);
      } catch (err) {
        log.error({ file: confPath, err: (err as Error).message }, 'cannot write nginx config');
        this.metrics.configGood.set(0);
        return this.record('write_failed');
      }
      const timeout = this.opts.commandTimeoutMs ?? 30_000;
      const check = await runShell(this.opts.checkCmd, timeout);
      if (check.code !== 0) {
        if (previous !== undefined) await writeAtomic(confPath, previous);
        else await fsp.rm(confPath, { force: true });
        this.rejected = text;
        this.metrics.configGood.set(0);
        log.error({ cmd: this.opts.checkCmd, code: check.code, output: check.output.slice(-2000) }, 'nginx check failed: kept the last good config');
        return this.record('check_failed');
      }
      const oldWorkers = this.opts.pidFile ? await nginxWorkers(this.opts.pidFile) : [];
      const reload = await runShell(this.opts.reloadCmd, timeout);
      if (reload.code === 0 && oldWorkers.length > 0 && !(await oldWorkersRetired(oldWorkers, 5_000))) {
        this.metrics.configGood.set(0);
        log.error({ cmd: this.opts.reloadCmd, oldWorkers }, 'nginx reload not confirmed: old workers still accept after 5s (see the nginx error log)');
        return this.record('reload_failed');
      }
      if (reload.code !== 0) {
        this.metrics.configGood.set(0);
        log.error({ cmd: this.opts.reloadCmd, code: reload.code, output: reload.output.slice(-2000) }, 'nginx reload failed');
        return this.record('reload_failed');
      }
      this.rejected = undefined;
      this.synced = true;
      this.metrics.configGood.set(1);
      this.metrics.routes.set(routes.length);
      this.metrics.lastReloadSuccess.set(Date.now() / 1000);
      log.info({ file: confPath, routes: routes.length }, 'nginx reloaded');
      return this.record('reloaded');
    } finally {
      endApply();
    }
  }

  /** Stops watching; a pending burst is flushed and an apply in progress is finished first. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.watch?.close();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.flush();
    }
    this.stopped = true;
    while (this.running) await this.running;
  }
}
