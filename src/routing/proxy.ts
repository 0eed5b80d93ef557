import { promises as fsp } from 'node:fs';
import type { Logger } from 'pino';
import type { Route } from '../store/routes-contract.js';
import type { RouteWatch, RouteWatchOptions } from '../store/routes.js';
import { nginxMaster, nginxWorkers, oldWorkersRetired, readOrUndefined, runShell, writeAtomic } from './nginx-process.js';
import { composeNginx, parseBlocks, renderBlocks } from './nginx-render.js';
import { createProxyMetrics, type ProxyMetrics } from './proxy-metrics.js';

/**
 * `berth proxy`: the built-in confd. Watches the route keys, renders the nginx snippet, and when
 * the rendered text differs from what nginx serves: writes it atomically (tmp + rename), runs the
 * check command (default `nginx -t`: the WHOLE config that includes the snippet), then the reload
 * command (default `nginx -s reload`, graceful).
 *
 * A failed check is narrowed down to the routes that cause it (bisecting the changed routes, one
 * check each step): those keep their last good block (or stay out when they never had one) and are
 * reported, every other route applies. A rejected block is not tried again until it changes. A
 * failed reload is retried with backoff.
 *
 * Coalescing is on the leading edge: the first change after a quiet `coalesceMs` applies at once;
 * changes arriving while an apply runs, or within `coalesceMs` of its start, go together into the
 * next one. A burst of 50 key changes is therefore two reloads, and a lone cutover pays no wait.
 */
export interface RouteSource {
  watchRoutes(onRoutes: (routes: Route[], revision: string) => void, opts?: RouteWatchOptions): RouteWatch;
}

/** What nginx serves after an apply: the routes revision, and the upstreams left at an older block. */
export interface AppliedRoutes {
  revision: string;
  rejected: string[];
}

export interface ProxyOptions {
  confPath: string;
  listen: string;
  checkCmd: string;
  reloadCmd: string;
  coalesceMs: number;
  commandTimeoutMs?: number;
  /** First delay before retrying a failed reload, doubled each time up to `retryMaxMs`. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /**
   * nginx's pid file (`--nginx-pid-file`, BERTH_NGINX_PID_FILE). When set, a reload counts as done
   * only once every worker of the previous generation stopped accepting connections, so "reloaded"
   * means every new connection gets the new config (no old-config answer after that point).
   */
  pidFile?: string;
  /** Called after every apply that leaves nginx serving the latest table (the acknowledgement). */
  onApplied?: (applied: AppliedRoutes) => void;
  log: Logger;
  metrics?: ProxyMetrics;
}

/** A proxy runs for months: its apply history keeps only this many entries. */
export const HISTORY_LIMIT = 256;

export type ApplyResult = 'unchanged' | 'reloaded' | 'check_failed' | 'reload_failed' | 'write_failed';

type Blocks = Map<string, string>;

export class NginxProxy {
  readonly metrics: ProxyMetrics;
  private watch: RouteWatch | undefined;
  private latest: { routes: Route[]; revision: string } | undefined;
  private pending = false;
  private windowEnd = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private retries = 0;
  /** The blocks and file nginx serves (confirmed by a reload, or found on disk at start). */
  private served: { blocks: Blocks; text: string | undefined } | undefined;
  /** Blocks nginx -t rejected, by upstream: not tried again until they change. */
  private readonly rejected = new Map<string, string>();
  /** Results of the last HISTORY_LIMIT applies, oldest first, for tests and the bench. */
  readonly history: { at: number; result: ApplyResult }[] = [];
  private synced = false;
  private listeners: ((r: ApplyResult) => void)[] = [];

  constructor(
    private readonly source: RouteSource,
    private readonly opts: ProxyOptions,
  ) {
    this.metrics = opts.metrics ?? createProxyMetrics();
    renderBlocks([], { listen: opts.listen }); // validates the listen address up front
  }

  /** True once the first route table was applied (or found unchanged). */
  get ready(): boolean {
    return this.synced;
  }

  /** Upstreams whose current block nginx rejected (kept at their last good block, or left out). */
  get rejectedUpstreams(): string[] {
    return [...this.rejected.keys()].sort();
  }

  start(): void {
    this.watch = this.source.watchRoutes((routes, revision) => this.onRoutes(routes, revision), {
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

  onRoutes(routes: Route[], revision = '0'): void {
    if (this.stopped) return;
    this.latest = { routes, revision };
    this.pending = true;
    this.schedule();
  }

  /** Applies now when the window has passed (leading edge), else once it ends. */
  private schedule(delayMs = Math.max(0, this.windowEnd - Date.now())): void {
    if (this.stopped || this.running || this.timer || !this.pending) return;
    if (delayMs <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), delayMs);
  }

  private flush(): void {
    this.timer = undefined;
    const latest = this.latest;
    if (!latest || this.running) return;
    this.pending = false;
    this.windowEnd = Date.now() + this.opts.coalesceMs;
    this.running = this.apply(latest.routes, latest.revision)
      .then((result) => {
        if (result === 'reload_failed' || result === 'write_failed') this.retryLater();
        else this.retries = 0;
      })
      .catch((err: unknown) => this.opts.log.error({ err: (err as Error).message }, 'apply failed'))
      .finally(() => {
        this.running = undefined;
        this.schedule();
      });
  }

  private retryLater(): void {
    const delay = Math.min((this.opts.retryBaseMs ?? 1_000) * 2 ** this.retries, this.opts.retryMaxMs ?? 30_000);
    this.retries++;
    this.opts.log.warn({ inMs: delay, attempt: this.retries }, 'retrying the nginx apply');
    this.pending = true;
    this.windowEnd = Math.max(this.windowEnd, Date.now() + delay);
  }

  private record(result: ApplyResult): ApplyResult {
    this.history.push({ at: Date.now(), result });
    if (this.history.length > HISTORY_LIMIT) this.history.shift();
    if (result !== 'unchanged') this.metrics.reloads.inc({ result });
    const ls = this.listeners;
    this.listeners = [];
    for (const l of ls) l(result);
    return result;
  }

  private servedNow(blocks: Blocks, text: string, revision: string, routes: number, result: 'unchanged' | 'reloaded'): ApplyResult {
    this.served = { blocks, text };
    this.synced = true;
    this.metrics.configGood.set(1);
    this.metrics.routes.set(routes);
    this.metrics.routesRejected.set(this.rejected.size);
    this.opts.onApplied?.({ revision, rejected: this.rejectedUpstreams });
    return this.record(result);
  }

  /** Render → compare → write → check (isolating rejected routes) → reload. Exposed for tests. */
  async apply(routes: Route[], revision = '0'): Promise<ApplyResult> {
    const { log, confPath } = this.opts;
    const endRender = this.metrics.renderSeconds.startTimer();
    const wanted = renderBlocks(routes, { listen: this.opts.listen });
    endRender();
    const endApply = this.metrics.applySeconds.startTimer();
    try {
      if (!this.served) {
        const onDisk = await readOrUndefined(confPath);
        if (onDisk === composeNginx(wanted)) return this.servedNow(wanted, onDisk, revision, wanted.size, 'unchanged');
        // What nginx serves: a rejected route then keeps its block from the file found on disk.
        this.served = { blocks: (onDisk !== undefined ? parseBlocks(onDisk) : undefined) ?? new Map(), text: onDisk };
      }
      const served = this.served;
      for (const [upstream, block] of this.rejected) if (wanted.get(upstream) !== block) this.rejected.delete(upstream);
      const candidate = this.withoutRejected(wanted, served.blocks);
      const text = composeNginx(candidate);
      if (text === served.text) return this.servedNow(served.blocks, text, revision, candidate.size, 'unchanged');

      let accepted = candidate;
      let check = await this.check(candidate);
      if (check === 'write_failed') return this.failed('write_failed');
      if (check !== 'ok') {
        accepted = await this.isolate(served.blocks, candidate, check);
        if (composeNginx(accepted) === served.text) {
          await this.restore(served.text);
          return this.failed('check_failed');
        }
        check = await this.check(accepted);
        if (check !== 'ok') return this.failed(check === 'write_failed' ? 'write_failed' : 'check_failed');
      }
      const reloaded = await this.reload();
      if (!reloaded) return this.failed('reload_failed');
      this.metrics.lastReloadSuccess.set(Date.now() / 1000);
      log.info({ file: confPath, routes: accepted.size, rejected: this.rejectedUpstreams, revision }, 'nginx reloaded');
      return this.servedNow(accepted, composeNginx(accepted), revision, accepted.size, 'reloaded');
    } finally {
      endApply();
    }
  }

  /** Known-rejected routes keep the block nginx serves for them, or stay out. */
  private withoutRejected(wanted: Blocks, served: Blocks): Blocks {
    const out = new Map(wanted);
    for (const upstream of this.rejected.keys()) {
      const good = served.get(upstream);
      if (good === undefined) out.delete(upstream);
      else out.set(upstream, good);
    }
    return out;
  }

  /**
   * The check failed: finds the changed routes nginx accepts by bisecting them on top of what is
   * served (a few checks per bad route). When even the served set fails, nothing is blamed on a
   * route: the fault is elsewhere (the main config, a served host gone from DNS).
   */
  private async isolate(served: Blocks, candidate: Blocks, firstFailure: string): Promise<Blocks> {
    const changes: [string, string | undefined][] = [];
    for (const u of new Set([...served.keys(), ...candidate.keys()])) {
      if (served.get(u) !== candidate.get(u)) changes.push([u, candidate.get(u)]);
    }
    const baseCheck = await this.check(served);
    if (baseCheck !== 'ok') {
      this.opts.log.error({ cmd: this.opts.checkCmd, output: tail(firstFailure) }, 'nginx check failed even for the served routes: kept the last good config');
      return served;
    }
    let current = new Map(served);
    const apply = (base: Blocks, items: [string, string | undefined][]) => {
      const next = new Map(base);
      for (const [u, b] of items) (b === undefined ? next.delete(u) : next.set(u, b));
      return next;
    };
    const add = async (items: [string, string | undefined][], knownBad: boolean): Promise<void> => {
      if (items.length === 0) return;
      if (!knownBad) {
        const next = apply(current, items);
        const result = await this.check(next);
        if (result === 'ok') {
          current = next;
          return;
        }
        if (items.length === 1) return this.reject(items[0]![0], items[0]![1]!, result);
      } else if (items.length === 1) {
        return this.reject(items[0]![0], items[0]![1]!, firstFailure);
      }
      const mid = items.length >> 1;
      await add(items.slice(0, mid), false);
      await add(items.slice(mid), false);
    };
    await add(changes, true);
    return current;
  }

  private reject(upstream: string, block: string, output: string): void {
    this.rejected.set(upstream, block);
    this.metrics.routeRejections.inc();
    this.opts.log.error({ upstream, cmd: this.opts.checkCmd, output: tail(output) }, 'nginx rejects this route: left at its last good config, the others apply');
  }

  /** Writes the blocks and runs the check: 'ok', 'write_failed', or the check's output. */
  private async check(blocks: Blocks): Promise<string> {
    try {
      await writeAtomic(this.opts.confPath, composeNginx(blocks));
    } catch (err) {
      this.opts.log.error({ file: this.opts.confPath, err: (err as Error).message }, 'cannot write nginx config');
      return 'write_failed';
    }
    const check = await runShell(this.opts.checkCmd, this.opts.commandTimeoutMs ?? 30_000);
    return check.code === 0 ? 'ok' : check.output || `exit ${check.code}`;
  }

  private async restore(text: string | undefined): Promise<void> {
    if (text !== undefined) await writeAtomic(this.opts.confPath, text);
    else await fsp.rm(this.opts.confPath, { force: true });
  }

  /**
   * Graceful reload, confirmed (with a pid file) once the old workers stopped accepting. With the
   * pid file, the master gets SIGHUP directly (what `nginx -s reload` sends, without starting a
   * second nginx that parses the whole config again just to find the pid).
   */
  private async reload(): Promise<boolean> {
    const { log, reloadCmd, pidFile } = this.opts;
    const oldWorkers = pidFile ? await nginxWorkers(pidFile) : [];
    const master = pidFile ? await nginxMaster(pidFile) : undefined;
    if (master !== undefined && oldWorkers.length > 0) {
      try {
        process.kill(master, 'SIGHUP');
      } catch (err) {
        log.error({ pid: master, err: (err as Error).message }, 'nginx reload failed: cannot signal the master');
        return false;
      }
    } else {
      const reload = await runShell(reloadCmd, this.opts.commandTimeoutMs ?? 30_000);
      if (reload.code !== 0) {
        log.error({ cmd: reloadCmd, code: reload.code, output: tail(reload.output) }, 'nginx reload failed');
        return false;
      }
    }
    if (oldWorkers.length > 0 && !(await oldWorkersRetired(oldWorkers, 5_000))) {
      log.error({ pid: master, oldWorkers }, 'nginx reload not confirmed: old workers still accept after 5s (see the nginx error log)');
      return false;
    }
    return true;
  }

  private failed(result: Exclude<ApplyResult, 'unchanged' | 'reloaded'>): ApplyResult {
    this.metrics.configGood.set(0);
    this.metrics.routesRejected.set(this.rejected.size);
    return this.record(result);
  }

  /** Stops watching; a pending change is applied and an apply in progress is finished first. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.watch?.close();
    while (this.running) await this.running;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending) this.flush();
    this.stopped = true;
    while (this.running) await this.running;
  }
}

function tail(output: string): string {
  return output.slice(-2000);
}
