import { hostname } from 'node:os';
import type { Lease } from 'etcd3';
import type { Logger } from 'pino';
import { NotLeaderError } from '../api/errors.js';
import type { EtcdClient } from '../store/client.js';
import type { FenceToken } from '../store/fence.js';
import { realClock, sleep, type Clock } from './clock.js';
import type { LeaderElection, Leadership } from './leader.js';
import { LeaseTimer } from './lease-timer.js';

export interface EtcdLeaderElectionOptions {
  log: Logger;
  clock?: Clock;
  /** The lease's TTL: how long a leader that stops renewing keeps the key. */
  ttlSeconds?: number;
  /** A Docker mutation needs the lease held at least this much longer. */
  marginMs?: number;
  /** How often a standby checks whether it leads now, and waits after a failed attempt. */
  retryMs?: number;
}

/**
 * Leader election under `<prefix>/leader/election/controller/` (the key layout of etcd's
 * election recipe, shared with earlier berth versions): each candidate puts a key bound to
 * its own lease; the key with the oldest create revision leads. The leader key's create
 * revision is the fence token of the term.
 *
 * A standby polls (as client-go's leaderelection does) rather than watching: a poll that
 * fails is simply retried, so a paused or restarted etcd never ends the campaign. Any failure
 * of an attempt (etcd unreachable, lease lost) gives the lease up and starts a new attempt.
 */
export class EtcdLeaderElection implements LeaderElection {
  readonly identity = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly retryMs: number;
  private readonly electionPrefix: string;

  constructor(
    private readonly client: EtcdClient,
    private readonly o: EtcdLeaderElectionOptions,
  ) {
    this.clock = o.clock ?? realClock;
    this.ttlMs = (o.ttlSeconds ?? 10) * 1000;
    this.retryMs = o.retryMs ?? 1_000;
    this.electionPrefix = `${client.prefix}/leader/election/controller/`;
  }

  async campaign(signal: AbortSignal): Promise<Leadership> {
    while (!signal.aborted) {
      try {
        return await this.attempt(signal);
      } catch (err) {
        if (signal.aborted) break;
        this.o.log.warn({ err: (err as Error).message }, 'campaign failed; campaigning again');
        await sleep(this.clock, this.retryMs, signal);
      }
    }
    throw new Error('stopped before elected');
  }

  /** One candidacy on one lease, until elected; throws when the lease or etcd fails. */
  private async attempt(signal: AbortSignal): Promise<Leadership> {
    const timer = new LeaseTimer(this.clock, this.ttlMs);
    const requestedAt = this.clock.now();
    const lease = this.client.etcd.lease(this.ttlMs / 1000);
    let lostReason: Error | undefined;
    lease.on('lost', (err: Error) => (lostReason ??= err));
    lease.on('keepaliveFired', () => timer.keepaliveSent());
    lease.on('keepaliveSucceeded', (res: { TTL: string }) => timer.keepaliveAnswered(Number(res.TTL) * 1000));
    try {
      const id = await this.client.call('grant leader lease', () => lease.grant());
      timer.granted(requestedAt);
      const key = `${this.electionPrefix}${id}`;
      const put = await this.client.call(`put ${key}`, () =>
        this.client.etcd.if(key, 'Create', '==', 0).then(this.client.etcd.put(key).value(this.identity).lease(id)).else(this.client.etcd.get(key)).commit(),
      );
      const createRevision = put.succeeded ? put.header.revision : put.responses[0]!.response_range!.kvs[0]!.create_revision;
      const token: FenceToken = { key, createRevision };
      for (;;) {
        if (signal.aborted) throw new Error('stopped before elected');
        if (lostReason) throw lostReason;
        if (timer.remainingMs() <= 0) throw new Error('standby lease not renewed within its TTL');
        const first = await this.client.call(`get ${this.electionPrefix}`, () =>
          this.client.etcd.getAll().prefix(this.electionPrefix).sort('Create', 'Ascend').limit(1).exec(),
        );
        const leader = first.kvs[0];
        if (leader?.key.toString() === key && leader.create_revision === createRevision) {
          return new EtcdLeadership(lease, timer, token, this.clock, this.o.marginMs ?? 2_000, this.client);
        }
        await sleep(this.clock, this.retryMs, signal);
      }
    } catch (err) {
      void revoke(lease, this.client);
      throw err;
    }
  }
}

/** Revokes the lease (its key goes at once), bounded by the client's call deadline; never throws. */
async function revoke(lease: Lease, client: EtcdClient): Promise<void> {
  await client.call('revoke leader lease', () => lease.revoke()).catch(() => lease.release());
}

/** One term, ended by the lease timer, etcd reporting the lease lost, or a stale fence. */
class EtcdLeadership implements Leadership {
  private readonly ended = new AbortController();
  private watchdog: unknown;

  constructor(
    private readonly lease: Lease,
    private readonly timer: LeaseTimer,
    private readonly fenceToken: FenceToken,
    private readonly clock: Clock,
    private readonly marginMs: number,
    private readonly client: EtcdClient,
  ) {
    lease.on('lost', (err: Error) => this.end(new NotLeaderError(`leader lease lost: ${err.message}`)));
    this.arm();
  }

  get signal(): AbortSignal {
    return this.ended.signal;
  }

  token(): FenceToken {
    if (this.ended.signal.aborted) throw new NotLeaderError('refused: leadership has ended');
    return this.fenceToken;
  }

  lost(err: NotLeaderError): void {
    this.end(err);
  }

  assertHeld(operation: string): void {
    const remaining = this.timer.remainingMs();
    if (!this.ended.signal.aborted && remaining > this.marginMs) return;
    throw new NotLeaderError(`${operation}: refused, the leader lease is known held for ${Math.max(0, Math.round(remaining))} ms only (margin ${this.marginMs} ms)`);
  }

  async resign(): Promise<void> {
    this.end(new NotLeaderError('resigned'));
    await revoke(this.lease, this.client);
  }

  /**
   * Ends the term once the lease is no longer known to be held: keepalives unanswered for the
   * TTL (etcd paused or unreachable, or this process was paused). etcd3 itself reports the
   * loss only after twice the TTL, long after a standby may have taken over.
   */
  private arm(): void {
    const remaining = this.timer.remainingMs();
    if (remaining <= 0) {
      this.end(new NotLeaderError('leader lease not renewed within its TTL'));
      return;
    }
    this.watchdog = this.clock.setTimer(() => this.arm(), remaining);
  }

  private end(reason: NotLeaderError): void {
    if (this.ended.signal.aborted) return;
    this.clock.clearTimer(this.watchdog);
    this.ended.abort(reason);
  }
}
