import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import pRetry, { AbortError } from 'p-retry';
import { AdapterError } from '../api/errors.js';

/** Where berth's resources live: the etcd endpoints and the key prefix (default `/berth`). */
export interface StoreConfig {
  endpoints: string[];
  prefix: string;
  /** Per-call deadline for unary calls (not watch streams), ms. */
  callTimeoutMs?: number;
  /** Retries after the first attempt of a single call. */
  retries?: number;
}

export const DEFAULT_ENDPOINTS = 'http://127.0.0.1:2379';
export const DEFAULT_PREFIX = '/berth';

/** Config from flags (when given) over `BERTH_ETCD_ENDPOINTS` / `BERTH_PREFIX` over defaults. */
export function storeConfig(
  flags: { etcdEndpoints?: string | undefined; prefix?: string | undefined } = {},
  env: NodeJS.ProcessEnv = process.env,
): StoreConfig {
  const endpoints = (flags.etcdEndpoints ?? env.BERTH_ETCD_ENDPOINTS ?? DEFAULT_ENDPOINTS)
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0)
    .map((e) => (/^https?:\/\//.test(e) ? e : `http://${e}`));
  return { endpoints: endpoints.length > 0 ? endpoints : [DEFAULT_ENDPOINTS], prefix: normalizePrefix(flags.prefix ?? env.BERTH_PREFIX ?? DEFAULT_PREFIX) };
}

/** `/berth/` → `/berth`, `berth` → `/berth`. The empty prefix is not allowed: `/` is used instead of ``. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.trim().replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/** A policy object that just runs the call: the client's own retry and circuit breaker are replaced by ours. */
const passThrough = {
  execute: <T>(fn: (ctx: unknown) => T | Promise<T>) => Promise.resolve().then(() => fn({ signal: new AbortController().signal, attempt: 1 })),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
};

/**
 * An etcd3 client plus the berth prefix. Single calls go through `call`, which retries a few
 * times with a short backoff and turns every failure into an AdapterError.
 */
export class EtcdClient {
  readonly etcd: Etcd3;
  readonly prefix: string;
  readonly endpoints: string[];
  private readonly retries: number;

  constructor(config: StoreConfig) {
    this.prefix = normalizePrefix(config.prefix);
    this.endpoints = config.endpoints;
    this.retries = config.retries ?? 2;
    const callTimeoutMs = config.callTimeoutMs ?? 1_500;
    const options: IOptions = {
      hosts: config.endpoints,
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

  /** The names of the keys directly under `prefix` (which ends with '/'); deeper keys are left out. */
  async names(prefix: string): Promise<string[]> {
    const keys = await this.call(`list ${prefix}`, () => this.etcd.getAll().prefix(prefix).keys());
    return keys.map((k) => k.slice(prefix.length)).filter((n) => n !== '' && !n.includes('/'));
  }

  wrap(operation: string, err: unknown): AdapterError {
    if (err instanceof AdapterError) return err;
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

export function createClient(config: StoreConfig): EtcdClient {
  return new EtcdClient(config);
}
