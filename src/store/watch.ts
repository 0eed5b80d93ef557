import type { IKeyValue, Watcher } from 'etcd3';
import type { Kind, Resource } from '../api/resource.js';
import type { EtcdClient } from './client.js';
import { parseResourceKey, resourcePrefix } from './keys.js';
import { decodeResource, ResourceStore } from './resources.js';
import { Backoff } from '../util/backoff.js';

export type WatchEvent =
  | { type: 'put'; kind: Kind; name: string; resource: Resource; revision: string }
  | { type: 'delete'; kind: Kind; name: string; revision: string }
  /**
   * The full current set of the watched kind(s) at `revision`. Sent first when no start
   * revision is given, and whenever the revision to resume from was compacted away: a consumer
   * replaces its view with `items` (names it knew that are missing here were deleted).
   */
  | { type: 'relist'; kind: Kind | 'all'; items: Resource[]; revision: string };

/**
 * disconnected: the stream broke, resumed from the last revision + 1; compacted: that revision
 * was compacted, relisted; canceled: etcd canceled the watch for another reason, relisted.
 */
export type RestartReason = 'disconnected' | 'compacted' | 'canceled';

export interface WatchOptions {
  /** Called each time the etcd watch is re-established after a disconnect or a compaction. */
  onRestart?: (reason: RestartReason, err: Error) => void;
  /** Called for a stored value that does not pass the schema; the event is skipped. */
  onInvalid?: (key: string, err: Error) => void;
}

export interface ResourceWatch extends AsyncIterableIterator<WatchEvent> {
  close(): Promise<void>;
  /** Revision of the last event delivered to the queue (or of the last relist). */
  readonly lastRevision: string | undefined;
}

const COMPACTED = /compacted/i;

/**
 * Watches EnvironmentGroups, Environments or both and yields put/delete events in revision
 * order. How it survives etcd trouble (checked against etcd3@1's watch.js):
 * - the library reports a broken stream with `disconnected` and would reconnect on its own from
 *   the revision in the last response header; we instead drop that watcher and open a new one
 *   from (last delivered event revision + 1), so nothing between is skipped or repeated;
 * - a start revision that was compacted makes etcd cancel the watch; the library emits `error`
 *   ("Watcher canceled: mvcc: required revision has been compacted"). We then list everything
 *   at one revision, yield a `relist` event, and watch again from that revision + 1.
 *   (etcd3@1 loses the compact_revision and reports "Watcher canceled: " with an empty reason,
 *   so we probe the start revision to tell compaction from other cancellations.)
 * Without `fromRevision` the iterator starts with a `relist` of the current set.
 */
export function watchResources(client: EtcdClient, kind: Kind | 'all', fromRevision?: string, opts: WatchOptions = {}): ResourceWatch {
  return new ResourceWatcher(client, kind, fromRevision, opts);
}

class ResourceWatcher implements ResourceWatch {
  private readonly queue: WatchEvent[] = [];
  private waiting: ((r: IteratorResult<WatchEvent>) => void) | undefined;
  private closed = false;
  private watcher: Watcher | undefined;
  private last: bigint | undefined;
  private readonly store: ResourceStore;
  private readonly reconnect = new Backoff(100, 2_000);

  constructor(
    private readonly client: EtcdClient,
    private readonly kind: Kind | 'all',
    fromRevision: string | undefined,
    private readonly opts: WatchOptions,
  ) {
    this.store = new ResourceStore(client);
    if (fromRevision === undefined) void this.relistAndWatch();
    else {
      this.last = BigInt(fromRevision) - 1n;
      this.open();
    }
  }

  get lastRevision(): string | undefined {
    return this.last?.toString();
  }

  private get keyPrefix(): string {
    return this.kind === 'all' ? `${this.client.prefix}/` : resourcePrefix(this.client.prefix, this.kind);
  }

  private open(): void {
    if (this.closed) return;
    const start = ((this.last ?? 0n) + 1n).toString();
    const w = this.client.etcd.watch().prefix(this.keyPrefix).startRevision(start).withPreviousKV().watcher();
    this.watcher = w;
    w.on('connected', () => {
      this.reconnect.reset();
    });
    w.on('data', (res) => {
      if (this.watcher !== w) return;
      for (const ev of res.events) this.handle(ev.type, ev.kv);
    });
    w.on('disconnected', (err: Error) => {
      if (this.watcher !== w) return;
      this.watcher = undefined;
      this.restart(w, 'disconnected', err);
    });
    w.on('error', (err: Error) => {
      if (this.watcher !== w) return;
      this.watcher = undefined;
      // etcd3@1 drops the response's compact_revision: the error reads "Watcher canceled: " with
      // an empty reason. Ask etcd whether the start revision is gone; relist either way.
      void this.isCompacted(start).then((compacted) => this.restart(w, compacted ? 'compacted' : 'canceled', err));
    });
  }

  private async isCompacted(revision: string): Promise<boolean> {
    try {
      await this.client.etcd.get(`${this.keyPrefix}`).revision(revision).exec();
      return false;
    } catch (err) {
      return COMPACTED.test((err as Error).message);
    }
  }

  private restart(w: Watcher, reason: RestartReason, err: Error): void {
    if (this.watcher === w) this.watcher = undefined;
    void w.cancel().catch(() => undefined);
    if (this.closed) return;
    this.opts.onRestart?.(reason, err);
    if (reason === 'disconnected') setTimeout(() => this.open(), this.reconnect.next());
    else setTimeout(() => void this.relistAndWatch(), reason === 'canceled' ? this.reconnect.next() : 0);
  }

  private handle(type: 'Put' | 'Delete', kv: IKeyValue): void {
    // etcd sends events from the start revision on, in order; several keys of one txn share a revision.
    const revision = BigInt(kv.mod_revision);
    if (this.last === undefined || revision > this.last) this.last = revision;
    const key = kv.key.toString();
    const ref = parseResourceKey(this.client.prefix, key);
    if (!ref || (this.kind !== 'all' && ref.kind !== this.kind)) return;
    if (type === 'Delete') {
      this.push({ type: 'delete', kind: ref.kind, name: ref.name, revision: kv.mod_revision });
      return;
    }
    try {
      const resource = decodeResource(ref.kind, key, kv.value.toString());
      this.push({ type: 'put', kind: ref.kind, name: ref.name, resource, revision: kv.mod_revision });
    } catch (err) {
      this.opts.onInvalid?.(key, err as Error);
    }
  }

  private async relistAndWatch(): Promise<void> {
    while (!this.closed) {
      try {
        const kinds: Kind[] = this.kind === 'all' ? ['EnvironmentGroup', 'Environment'] : [this.kind];
        let revision: string | undefined;
        const items: Resource[] = [];
        for (const k of kinds) {
          // Invalid values are skipped and reported, as in handle(): one bad key must not stop the watch.
          const page = await this.store.listAt(k, revision, (key, err) => this.opts.onInvalid?.(key, err));
          revision = page.revision;
          items.push(...page.items);
        }
        if (this.closed) return;
        this.last = BigInt(revision ?? '0');
        this.push({ type: 'relist', kind: this.kind, items, revision: revision ?? '0' });
        this.open();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, this.reconnect.next()));
      }
    }
  }

  private push(event: WatchEvent): void {
    if (this.closed) return;
    const waiter = this.waiting;
    if (waiter) {
      this.waiting = undefined;
      waiter({ value: event, done: false });
    } else this.queue.push(event);
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    const event = this.queue.shift();
    if (event) return Promise.resolve({ value: event, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  async return(): Promise<IteratorResult<WatchEvent>> {
    await this.close();
    return { value: undefined, done: true };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    const waiter = this.waiting;
    this.waiting = undefined;
    waiter?.({ value: undefined, done: true });
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await w.cancel().catch(() => undefined);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
