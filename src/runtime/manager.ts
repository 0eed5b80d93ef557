import type { Logger } from 'pino';
import type { BerthMetrics } from '../metrics/registry.js';
import type { LeaderElection } from './leader.js';
import { RunnableGroup, type Runnable } from './runnable.js';

export interface ManagerOptions {
  election: LeaderElection;
  log: Logger;
  metrics: Pick<BerthMetrics, 'leader'>;
  /**
   * A runnable failed, or leadership was lost (the leader's runnables are stopped first): the
   * process should exit for its supervisor to restart it.
   */
  onFatal: (err: unknown) => void;
}

type State = 'idle' | 'campaigning' | 'leading' | 'lost' | 'stopping';

/**
 * Starts and stops runnables together with leader election (controller-runtime's manager):
 * runnables that need leadership start once elected and stop the moment the lease is lost;
 * the others run from start() to stop().
 */
export class Manager {
  private readonly always: RunnableGroup;
  private readonly leading: RunnableGroup;
  private readonly alwaysRunnables: Runnable[] = [];
  private readonly leaderRunnables: Runnable[] = [];
  private readonly campaign = new AbortController();
  private state: State = 'idle';
  private stopped: Promise<void> | undefined;

  constructor(private readonly o: ManagerOptions) {
    const failed = (name: string, err: unknown) => {
      o.log.error({ runnable: name, err: (err as Error).message }, 'runnable failed');
      o.onFatal(err);
    };
    this.always = new RunnableGroup(failed);
    this.leading = new RunnableGroup(failed);
  }

  get identity(): string {
    return this.o.election.identity;
  }

  /** Before start(). Runnables need leadership unless they say otherwise. */
  add(r: Runnable, opts: { needLeaderElection?: boolean } = {}): void {
    (opts.needLeaderElection === false ? this.alwaysRunnables : this.leaderRunnables).push(r);
  }

  /** /readyz: a standby is ready; a leader once every leader runnable is. */
  ready(): boolean {
    if (this.state === 'campaigning') return true;
    return this.state === 'leading' && this.leaderRunnables.every((r) => r.ready?.() ?? true);
  }

  /** Resolves once elected and the leader runnables started; rejects when stopped before that. */
  async start(): Promise<void> {
    if (this.stopped) throw new Error('stopped before elected');
    for (const r of this.alwaysRunnables) this.always.start(r);
    this.state = 'campaigning';
    await this.o.election.elect(this.campaign.signal, (err) => this.leadershipLost(err));
    if (this.state !== 'campaigning') return;
    this.state = 'leading';
    this.o.metrics.leader.set(1);
    this.o.log.info({ identity: this.identity }, 'elected leader');
    for (const r of this.leaderRunnables) this.leading.start(r);
  }

  private leadershipLost(err: Error): void {
    if (this.state !== 'leading') return;
    this.state = 'lost';
    this.o.log.error({ err: err.message }, 'leadership lost: stopping the leader runnables');
    this.o.metrics.leader.set(0);
    void this.leading.stop();
    this.o.onFatal(err);
  }

  /**
   * Graceful stop, once however often called: the leader runnables stop (workers take no new
   * key, running reconciles finish), leadership is resigned, then the other runnables stop.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.state = 'stopping';
      this.campaign.abort();
      await this.leading.stop();
      await this.o.election.resign();
      this.o.metrics.leader.set(0);
      await this.always.stop();
    })();
    return this.stopped;
  }
}
