import type { Logger } from 'pino';
import { NotLeaderError } from '../api/errors.js';
import type { BerthMetrics } from '../metrics/registry.js';
import { realClock, type Clock } from './clock.js';
import { CurrentLeadership } from './current-leadership.js';
import type { LeaderElection, Leadership } from './leader.js';
import { RunnableGroup, type Runnable } from './runnable.js';

export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

export interface ManagerOptions {
  election: LeaderElection;
  log: Logger;
  metrics: Pick<BerthMetrics, 'leader'>;
  clock?: Clock;
  /** A graceful stop lets running reconciles finish this long, then abandons them. */
  drainTimeoutMs?: number;
  /** A runnable failed: the process should exit for its supervisor to restart it. */
  onFatal: (err: unknown) => void;
}

type State = 'idle' | 'campaigning' | 'leading' | 'stepping-down' | 'stopping';

/**
 * Starts and stops runnables together with leader election (controller-runtime's manager):
 * runnables that need leadership start once elected; the others run from start() to stop().
 *
 * Leadership comes in terms. A term ends when the lease is lost (etcd unreachable or paused
 * past the lease, this process paused, a fenced write refused): the leader runnables stop at
 * once, in-flight reconciles are abandoned (their writes are fenced anyway), and the manager
 * campaigns again. Losing leadership never ends the process; only stop() does.
 */
export class Manager {
  /** The fence that the leader runnables' writes consult. */
  readonly leadership = new CurrentLeadership();
  private readonly always: RunnableGroup;
  private readonly alwaysRunnables: Runnable[] = [];
  private readonly leaderRunnables: Runnable[] = [];
  private readonly stopping = new AbortController();
  private readonly clock: Clock;
  private readonly failed: (name: string, err: unknown) => void;
  private state: State = 'idle';
  private loop: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;

  constructor(private readonly o: ManagerOptions) {
    this.clock = o.clock ?? realClock;
    this.failed = (name: string, err: unknown) => {
      o.log.error({ runnable: name, err: (err as Error).message }, 'runnable failed');
      o.onFatal(err);
    };
    this.always = new RunnableGroup(this.failed);
  }

  get identity(): string {
    return this.o.election.identity;
  }

  /** Before start(). Runnables need leadership unless they say otherwise. */
  add(r: Runnable, opts: { needLeaderElection?: boolean } = {}): void {
    (opts.needLeaderElection === false ? this.alwaysRunnables : this.leaderRunnables).push(r);
  }

  /** /readyz: a standby is ready; a leader once every leader runnable is; nobody while stopping. */
  ready(): boolean {
    if (this.state === 'campaigning') return true;
    return this.state === 'leading' && this.leaderRunnables.every((r) => r.ready?.() ?? true);
  }

  /** /healthz: why a leader runnable is stalled, or undefined. A standby is healthy. */
  stalled(): string | undefined {
    if (this.state !== 'leading') return undefined;
    for (const r of this.leaderRunnables) {
      const reason = r.stalled?.();
      if (reason) return `${r.name}: ${reason}`;
    }
    return undefined;
  }

  /**
   * Starts the runnables that need no leadership and the campaign loop. Resolves once first
   * elected; rejects ("stopped before elected") when stopped before that.
   */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('stopped before elected'));
    for (const r of this.alwaysRunnables) this.always.start(r);
    return new Promise((resolve, reject) => {
      this.loop = this.campaignLoop(resolve).finally(() => reject(new Error('stopped before elected')));
    });
  }

  private async campaignLoop(elected: () => void): Promise<void> {
    while (!this.stopping.signal.aborted) {
      this.state = 'campaigning';
      let term: Leadership;
      try {
        term = await this.o.election.campaign(this.stopping.signal);
      } catch {
        return; // campaign rejects only when stopping
      }
      if (this.stopping.signal.aborted) {
        await term.resign();
        return;
      }
      await this.lead(term, elected);
    }
  }

  /** One term: runs the leader runnables until the term ends or the manager stops. */
  private async lead(term: Leadership, elected: () => void): Promise<void> {
    this.leadership.begin(term);
    this.state = 'leading';
    this.o.metrics.leader.set(1);
    this.o.log.info({ identity: this.identity }, 'elected leader');
    const leading = new RunnableGroup(this.failed);
    this.leadership.within(term, () => {
      for (const r of this.leaderRunnables) leading.start(r);
    });
    elected();

    const ended = AbortSignal.any([term.signal, this.stopping.signal]);
    if (!ended.aborted) await new Promise((resolve) => ended.addEventListener('abort', resolve, { once: true }));

    this.o.metrics.leader.set(0);
    if (term.signal.aborted) {
      this.state = 'stepping-down';
      const reason = term.signal.reason as Error;
      this.o.log.error({ err: reason?.message }, 'leadership lost: abandoning in-flight reconciles, then campaigning again');
      await leading.stop({ afterMs: 0, clock: this.clock, reason: reason instanceof NotLeaderError ? reason : new NotLeaderError(`leadership lost: ${reason?.message}`) });
    } else {
      // Graceful stop: running reconciles finish (the lease is kept meanwhile), up to the drain timeout.
      const drainMs = this.o.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
      await leading.stop({ afterMs: drainMs, clock: this.clock, reason: new Error(`drain timeout (${drainMs} ms) passed: reconcile abandoned`) });
    }
    this.leadership.end();
    await term.resign();
  }

  /**
   * Graceful stop, once however often called: /readyz turns false, the leader runnables stop
   * (workers take no new key, running reconciles finish within the drain timeout), leadership
   * is resigned, then the other runnables stop.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.state = 'stopping';
      this.stopping.abort();
      await this.loop;
      this.o.metrics.leader.set(0);
      await this.always.stop();
    })();
    return this.stopped;
  }
}
