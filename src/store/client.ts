import { Etcd3, isRecoverableError, type ComparatorBuilder, type DeleteBuilder, type ICompare, type IKeyValue, type IOptions, type IRequestOp, type ITxnRequest, type PutBuilder } from 'etcd3';
import pRetry, { AbortError } from 'p-retry';
import { AdapterError, NotLeaderError } from '../api/errors.js';
import { etcdClientOptions, etcdSecurityFrom, type EtcdSecurity, type EtcdSecurityFlags } from './etcd-security.js';
import { staleFence, type Fence, type FenceToken } from './fence.js';
import { Together } from './together.js';

/** Where berth's resources live: the etcd endpoints and the key prefix (default `/berth`). */
export interface StoreConfig {
  endpoints: string[];
  prefix: string;
  /** Per-call deadline for unary calls (not watch streams), ms. */
  callTimeoutMs?: number;
  /** Retries after the first attempt of a single call. */
  retries?: number;
  /** TLS and password settings (etcd-security.ts); absent for a plain etcd. */
  security?: EtcdSecurity;
}

export const DEFAULT_ENDPOINTS = 'http://127.0.0.1:2379';
export const DEFAULT_PREFIX = '/berth';

/** Config from flags (when given) over `BERTH_ETCD_*` / `BERTH_PREFIX` over defaults. */
export function storeConfig(
  flags: { etcdEndpoints?: string | undefined; prefix?: string | undefined } & EtcdSecurityFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): StoreConfig {
  const security = etcdSecurityFrom(flags, env);
  const endpoints = (flags.etcdEndpoints ?? env.BERTH_ETCD_ENDPOINTS ?? DEFAULT_ENDPOINTS)
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0)
    // A bare host:port is https when a CA is given.
    .map((e) => (/^https?:\/\//.test(e) ? e : `${security?.caFile ? 'https' : 'http'}://${e}`));
  return {
    endpoints: endpoints.length > 0 ? endpoints : [DEFAULT_ENDPOINTS],
    prefix: normalizePrefix(flags.prefix ?? env.BERTH_PREFIX ?? DEFAULT_PREFIX),
    ...(security ? { security } : {}),
  };
}

/** `/berth/` → `/berth`, `berth` → `/berth`. The empty prefix is not allowed: `/` is used instead of ``. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.trim().replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/**
 * What a policy hands the call it runs: never aborted. One for every call: an AbortController
 * per call (two with the host's policy) was a measurable part of each etcd call's cost.
 */
const UNPOLICED = Object.freeze({ signal: new AbortController().signal, attempt: 1 });

/** A policy object that just runs the call: the client's own retry and circuit breaker are replaced by ours. */
const passThrough = {
  execute: <T>(fn: (ctx: unknown) => T | Promise<T>) => Promise.resolve().then(() => fn(UNPOLICED)),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
};

/**
 * An etcd3 client plus the berth prefix. Single calls go through `call`, which retries a few
 * times with a short backoff and turns every failure into an AdapterError. Every unary call has
 * a deadline (`callTimeoutMs`), so a paused etcd fails calls instead of hanging them.
 *
 * Writes go through `put`, `delete` and `txn`: on a client made by `fenced()` (the controller's)
 * each is a transaction that also compares the leader key, and a failed compare throws
 * NotLeaderError. The CLI's client is not fenced.
 */
export class EtcdClient {
  readonly etcd: Etcd3;
  readonly prefix: string;
  readonly endpoints: string[];
  private readonly retries: number;
  private readonly fence: Fence | undefined;
  /** Writes and reads of concurrent callers, gathered into shared transactions (`writeTogether`, `rangePrefixes`). */
  private readonly writes = new Together<GatheredWrite, BatchOutcome>(async (batch) => {
    const first = batch[0]!.operation;
    const res = await this.call(batch.length === 1 ? first : `${first} and ${batch.length - 1} more writes`, () => this.etcd.kv.txn(txnOf(batch)));
    return batch.map(() => (res.succeeded ? { landed: true, revision: res.header.revision } : { landed: false, alone: batch.length === 1 }));
  }, {
    cost: ({ write: w }) => [w.puts.length + w.deletes.length, w.compares.length + 1, w.puts.reduce((n, [k, v]) => n + k.length + v.length, 0)],
    budget: TXN_BUDGET,
    keysOf: ({ write: w }) => [...w.puts.map(([k]) => k), ...w.deletes],
  });
  private readonly reads = new Together<{ operation: string; prefixes: string[] }, IKeyValue[][]>(async (batch) => {
    const prefixes = batch.flatMap((r) => r.prefixes);
    const first = batch[0]!.operation;
    const res = await this.call(batch.length === 1 ? first : `${first} and ${batch.length - 1} more reads`, () =>
      this.etcd.kv.txn({ success: prefixes.map((p) => ({ request_range: { key: Buffer.from(p), range_end: prefixEnd(Buffer.from(p)) } })) }),
    );
    const kvs = res.responses.map((r) => r.response_range?.kvs ?? []);
    return batch.map((r) => kvs.splice(0, r.prefixes.length));
  }, { cost: (r) => [r.prefixes.length], budget: [TXN_BUDGET[0]!] });

  constructor(
    private readonly config: StoreConfig,
    shared?: { etcd: Etcd3; fence: Fence },
  ) {
    this.prefix = normalizePrefix(config.prefix);
    this.endpoints = config.endpoints;
    this.retries = config.retries ?? 2;
    this.fence = shared?.fence;
    if (shared) {
      this.etcd = shared.etcd;
      return;
    }
    const callTimeoutMs = config.callTimeoutMs ?? 1_500;
    const options: IOptions = {
      hosts: config.endpoints,
      ...(config.security ? etcdClientOptions(config.security) : {}),
      dialTimeout: callTimeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
      // Watch streams are reopened by listwatch.ts, which drops a broken watcher: the library's
      // own watch reconnect (and its backoff) never has a watcher left to serve.
      faultHandling: {
        host: () => passThrough as never,
        global: passThrough as never,
      },
    };
    this.etcd = new Etcd3(options);
  }

  /** The same connection, with every write fenced by `fence`. Closing stays the original's job. */
  fenced(fence: Fence): EtcdClient {
    return new EtcdClient(this.config, { etcd: this.etcd, fence });
  }

  /** A single put; fenced on a fenced client. */
  async put(operation: string, op: PutBuilder): Promise<void> {
    if (!this.fence) {
      await this.call(operation, () => op.exec());
      return;
    }
    await this.fencedCommit(operation, this.leaderCompare(this.fence).then(op));
  }

  /**
   * Writes `w` in one transaction with the writes asked for while another batch of them was on
   * its way (a group commit: the statuses and routes of every reconcile running at the time in
   * one round trip). Returns the revision it landed at, or undefined when one of its compares
   * failed, or on a fenced client the fence: the caller asks `checkFence` which, as after `txn`.
   * A batch lands whole or not at all; when it fails, each of its writes is committed again on
   * its own, so that a stale compare fails only the write that made it.
   */
  async writeTogether(operation: string, write: GroupWrite): Promise<string | undefined> {
    // The token of the term this write's work started in (CurrentLeadership): a batch compares
    // each of its writes' tokens, so none lands with another term's.
    const gathered: GatheredWrite = { operation, write, token: this.fence?.token() };
    const outcome = await this.writes.submit(gathered);
    if (outcome.landed) return outcome.revision;
    if (outcome.alone) return undefined;
    const res = await this.call(operation, () => this.etcd.kv.txn(txnOf([gathered])));
    return res.succeeded ? res.header.revision : undefined;
  }

  /** A put that compares nothing but the fence, written together with others (`writeTogether`): for statuses, which every reconcile writes. */
  async putTogether(key: string, value: string): Promise<void> {
    const operation = `put ${key}`;
    if ((await this.writeTogether(operation, { compares: [], deletes: [], puts: [[key, value]] })) !== undefined) return;
    const err = staleFence(operation, this.fence!.token());
    this.fence!.lost(err);
    throw err;
  }

  /** A single delete (a key or a prefix); returns how many keys went. Fenced on a fenced client. */
  async delete(operation: string, op: DeleteBuilder): Promise<number> {
    if (!this.fence) return Number((await this.call(operation, () => op.exec())).deleted);
    const res = await this.fencedCommit(operation, this.leaderCompare(this.fence).then(op));
    return Number(res.responses[0]?.response_delete_range?.deleted ?? 0);
  }

  /**
   * Starts a transaction with its first compare (`etcd.if`); on a fenced client the leader key
   * is compared too. A transaction that then fails has either lost its own compares or the
   * fence: the caller asks `checkFence` which.
   */
  txn(key: string, column: 'Create' | 'Mod' | 'Value' | 'Version', cmp: '==' | '!=' | '<' | '>', value: string | number): ComparatorBuilder {
    const first = this.etcd.if(key, column, cmp, value);
    if (!this.fence) return first;
    const token = this.fence.token();
    return first.and(token.key, 'Create', '==', token.createRevision);
  }

  /**
   * The leadership term this client's writes are fenced by (the leader key's create revision),
   * or undefined when unfenced or not leading: what the leader alone writes may be remembered
   * for as long as the term lasts.
   */
  term(): string | undefined {
    if (!this.fence) return undefined;
    try {
      return this.fence.token().createRevision;
    } catch {
      return undefined;
    }
  }

  /** After a failed `txn`: throws NotLeaderError when the leader key is no longer ours. */
  async checkFence(operation: string): Promise<void> {
    if (!this.fence) return;
    const token = this.fence.token();
    const res = await this.call(`get ${token.key}`, () => this.etcd.get(token.key).exec());
    if (res.kvs[0]?.create_revision === token.createRevision) return;
    const err = staleFence(operation, token);
    this.fence.lost(err);
    throw err;
  }

  private leaderCompare(fence: Fence): ComparatorBuilder {
    const token = fence.token();
    return this.etcd.if(token.key, 'Create', '==', token.createRevision);
  }

  private async fencedCommit(operation: string, txn: ComparatorBuilder) {
    const fence = this.fence!;
    const res = await this.call(operation, () => txn.commit());
    if (res.succeeded) return res;
    const err = staleFence(operation, fence.token());
    fence.lost(err);
    throw err;
  }

  /** Runs one etcd call with retries; `operation` names it in errors (`get /berth/groups/x`). */
  async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await pRetry(
        async () => {
          try {
            return await fn();
          } catch (err) {
            if (err instanceof Error && !isRecoverableError(err)) throw new AbortError(err);
            throw err;
          }
        },
        { retries: this.retries, minTimeout: 100, maxTimeout: 400, factor: 2, randomize: true },
      );
    } catch (err) {
      throw this.wrap(operation, err);
    }
  }

  /**
   * The keys under each of `prefixes`, read at one revision in one round trip (a transaction of
   * ranges), together with the prefixes other callers asked for while a read was on its way.
   */
  async rangePrefixes(operation: string, prefixes: string[]): Promise<IKeyValue[][]> {
    if (prefixes.length === 0) return [];
    return this.reads.submit({ operation, prefixes });
  }

  /** The names of the keys directly under `prefix` (which ends with '/'); deeper keys are left out. */
  async names(prefix: string): Promise<string[]> {
    const keys = await this.call(`list ${prefix}`, () => this.etcd.getAll().prefix(prefix).keys());
    return keys.map((k) => k.slice(prefix.length)).filter((n) => n !== '' && !n.includes('/'));
  }

  wrap(operation: string, err: unknown): AdapterError | NotLeaderError {
    if (err instanceof AdapterError || err instanceof NotLeaderError) return err;
    const cause = err instanceof Error ? err : new Error(String(err));
    const recoverable = isRecoverableError(cause);
    const detail = (cause.message.split('\n')[0] ?? cause.message).replace(/\.? *Resolution note:.*$/, '');
    const message = recoverable ? `etcd at ${this.endpoints.join(',')} unreachable: ${detail}` : `etcd error: ${detail}`;
    return new AdapterError(operation, message, { cause, recoverable });
  }

  close(): void {
    this.etcd.close();
  }
}

/** A write of a group commit: it applies only while each key in `compares` has that mod revision (0: absent). */
export interface GroupWrite {
  compares: (readonly [key: string, modRevision: number | string])[];
  deletes: string[];
  puts: (readonly [key: string, value: string])[];
}

interface GatheredWrite {
  operation: string;
  write: GroupWrite;
  token: FenceToken | undefined;
}

type BatchOutcome = { landed: true; revision: string } | { landed: false; alone: boolean };

/**
 * A batch's operations, compares and bytes: etcd refuses a transaction of over 128 operations or
 * compares (--max-txn-ops) or over 1.5 MiB (--max-request-bytes), and one naming a key twice.
 */
const TXN_BUDGET = [100, 100, 1_000_000] as const;

/** One transaction of `writes`: every compare of each (and the fence token it was asked for under), then every delete and put. */
function txnOf(writes: GatheredWrite[]): ITxnRequest {
  const compare: ICompare[] = [];
  const tokens = new Map<string, FenceToken>();
  for (const { token } of writes) if (token) tokens.set(`${token.key}@${token.createRevision}`, token);
  for (const t of tokens.values()) compare.push({ key: Buffer.from(t.key), target: 'Create', result: 'Equal', create_revision: t.createRevision });
  for (const { write } of writes) for (const [key, mod] of write.compares) compare.push({ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: String(mod) });
  const success: IRequestOp[] = writes.flatMap(({ write }) => [
    ...write.deletes.map((k) => ({ request_delete_range: { key: Buffer.from(k) } })),
    ...write.puts.map(([k, v]) => ({ request_put: { key: Buffer.from(k), value: Buffer.from(v) } })),
  ]);
  return { compare, success, failure: [] };
}

/** The end of the range of keys starting with `prefix`: its last byte below 0xff raised by one. */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export function createClient(config: StoreConfig): EtcdClient {
  return new EtcdClient(config);
}
