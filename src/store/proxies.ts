import type { Lease } from 'etcd3';
import type { Logger } from 'pino';
import { z } from 'zod';
import { canonicalJson } from '../util/canonical-json.js';
import type { EtcdClient } from './client.js';

/**
 * `berth proxy` registrations (docs/keys.md): `<prefix>/proxies/<id>` on a lease, holding the
 * routes revision nginx serves (once the old workers of the reload stopped accepting) and the
 * upstreams nginx rejected (kept at an older block). The controller drains an old colour only
 * when every proxy registered at the switch acknowledged it. A proxy that stops renewing loses
 * its key when the lease expires: the cutover record still names it, so it holds the drain up to
 * `--proxy-wait`.
 */
export interface ProxyAck {
  id: string;
  /** etcd revision of the route table nginx serves ('0' before the first apply). */
  revision: string;
  /** Upstreams whose current keys nginx rejected: not served at `revision`. */
  rejected: string[];
}

export interface ProxyAckReader {
  listProxies(): Promise<ProxyAck[]>;
}

const ackSchema = z.strictObject({ revision: z.string(), rejected: z.array(z.string()), at: z.string() });

export function proxiesPrefix(prefix: string): string {
  return `${prefix}/proxies/`;
}

/** The controller's side: reads every registration (an invalid value is skipped and logged). */
export class ProxyAckStore implements ProxyAckReader {
  constructor(
    private readonly client: EtcdClient,
    private readonly log: Logger,
  ) {}

  async listProxies(): Promise<ProxyAck[]> {
    const prefix = proxiesPrefix(this.client.prefix);
    const res = await this.client.call(`list ${prefix}`, () => this.client.etcd.getAll().prefix(prefix).exec());
    const out: ProxyAck[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      try {
        const v = ackSchema.parse(JSON.parse(kv.value.toString()));
        out.push({ id: key.slice(prefix.length), revision: v.revision, rejected: v.rejected });
      } catch {
        this.log.warn({ key }, 'invalid proxy registration skipped');
      }
    }
    return out;
  }
}

/**
 * The proxy's side: registers on a lease (renewed by the client), and writes each acknowledgement.
 * A lost lease (etcd unreachable longer than the TTL) is replaced and the last value written again.
 */
export class ProxyRegistration {
  private lease: Lease | undefined;
  private last: { revision: string; rejected: string[] } = { revision: '0', rejected: [] };
  private writing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly client: EtcdClient,
    readonly id: string,
    private readonly log: Logger,
    private readonly ttlSeconds = 10,
  ) {}

  get key(): string {
    return `${proxiesPrefix(this.client.prefix)}${this.id}`;
  }

  /** Records what nginx serves now; writes are serialized, the latest wins. */
  ack(revision: string, rejected: string[]): Promise<void> {
    this.last = { revision, rejected };
    this.writing = this.writing
      .then(() => this.write())
      .catch((err: unknown) => {
        this.log.warn({ key: this.key, err: (err as Error).message }, 'proxy acknowledgement not written; retrying in 2s');
        if (this.lease) void this.lease.revoke().catch(() => undefined);
        this.lease = undefined;
        if (!this.closed) setTimeout(() => void this.ack(this.last.revision, this.last.rejected), 2_000).unref();
      });
    return this.writing;
  }

  private async write(): Promise<void> {
    if (this.closed) return;
    if (!this.lease) {
      const lease = this.client.etcd.lease(this.ttlSeconds);
      lease.on('lost', (err: Error) => {
        this.log.warn({ key: this.key, err: err.message }, 'proxy registration lease lost: registering again');
        if (this.lease === lease) this.lease = undefined;
        void this.ack(this.last.revision, this.last.rejected);
      });
      this.lease = lease;
    }
    const value = canonicalJson({ ...this.last, at: new Date().toISOString() });
    await this.lease.put(this.key).value(value).exec();
  }

  /** Removes the registration (a proxy that stops cleanly holds no drain). */
  async close(): Promise<void> {
    this.closed = true;
    await this.writing;
    await this.lease?.revoke().catch(() => undefined);
  }
}
