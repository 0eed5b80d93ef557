import { promises as fsp } from 'node:fs';
import type { Logger } from 'pino';
import type { Route } from '../store/routes-contract.js';
import type { RouteWatch, RouteWatchOptions } from '../store/routes.js';
import { nginxWorkers, oldWorkersRetired, readOrUndefined, runShell, writeAtomic } from './nginx-process.js';
import { renderNginx } from './nginx-render.js';
import { createProxyMetrics, type ProxyMetrics } from './proxy-metrics.js';

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

/** A proxy runs for months: its apply history keeps only this many entries. */
export const HISTORY_LIMIT = 256;

export type ApplyResult = 'unchanged' | 'reloaded' | 'check_failed' | 'reload_failed' | 'write_failed' | 'rejected_again';

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
  /** Results of the last HISTORY_LIMIT applies, oldest first, for tests and the bench. */
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
    if (this.history.length > HISTORY_LIMIT) this.history.shift();
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
