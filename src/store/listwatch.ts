import { Backoff } from '../util/backoff.js';

/**
 * One list + watch loop for every reader of a key prefix (the resource watch, the route watch),
 * after client-go's reflector and kubernetes-client/javascript's cache.ts:
 * - list the prefix, watch from the list's revision + 1;
 * - a broken stream resumes from the last delivered revision + 1: nothing skipped or repeated;
 * - a start revision that was compacted (etcd's 410 Gone) means the history is lost: list again,
 *   and every key known before that is missing from the new list gets a delete;
 * - a list that fails is retried after a capped, doubling delay; the delay is injected.
 *
 * The loop keeps the decoded objects it has delivered (`items`), so a relist can tell what vanished.
 */

/** One key change as etcd reports it. */
export interface RawChange {
  type: 'put' | 'delete';
  key: string;
  /** The new value; '' for a delete. */
  value: string;
  /** mod_revision of the change (for a delete: the revision that deleted the key). */
  revision: string;
}

export interface RangeWatchHandlers {
  /** The stream is established; a reconnect delay may start over. */
  connected(): void;
  /** The changes of one etcd watch response (one transaction never spans two), in revision order. */
  changes(batch: RawChange[]): void;
  /** The stream broke; the watch is dead and must be opened again. */
  broken(err: Error): void;
  /** etcd canceled the watch; `compacted` tells whether the start revision was compacted away. */
  canceled(compacted: boolean, err: Error): void;
}

/** The keys a loop follows: those starting with `prefix`, or, with `end`, every key from `prefix` up to `end` (excluded). */
export interface KeySpan {
  prefix: string;
  end?: string;
}

/** Whether `key` lies in `span`. */
export function inSpan(span: KeySpan, key: string): boolean {
  return span.end === undefined ? key.startsWith(span.prefix) : key >= span.prefix && key < span.end;
}

/** The two etcd calls the loop needs, so the loop runs against a fake in unit tests. */
export interface KeyRange {
  /** Each key with its value and mod_revision (the revision of its last write), and the list's revision. */
  list(span: KeySpan): Promise<{ kvs: [key: string, value: string, modRevision: string][]; revision: string }>;
  watch(span: KeySpan, fromRevision: string, on: RangeWatchHandlers): { cancel(): Promise<void> };
}

/**
 * disconnected: the stream broke, resumed from the last revision + 1; compacted: that revision
 * was compacted, relisted; canceled: etcd canceled the watch for another reason, relisted.
 */
export type RestartReason = 'disconnected' | 'compacted' | 'canceled';

/** What the watched keys mean: which keys are objects and how to read their values. */
export interface KeyDecoder<T> {
  /** Whether `key` is one of the watched objects; other keys under the prefix pass unseen. */
  owns(key: string): boolean;
  /**
   * The object stored at `key`, written at `modRevision` (the key's mod_revision, in a list as in
   * an event); throws when the value is not a valid one.
   */
  decode(key: string, value: string, modRevision: string): T;
}

export type Change<T> = { type: 'put'; key: string; object: T; revision: string } | { type: 'delete'; key: string; revision: string };

export interface Delivery<T> {
  /** In revision order. A relist holds the deletes of what vanished, then a put of every listed object. */
  changes: Change<T>[];
  /** Every object known after these changes, by key. */
  items: ReadonlyMap<string, T>;
  /** The revision the view is at. */
  revision: string;
  /** True for a full list (the first, or after a compaction). */
  relisted: boolean;
}

export interface ListWatchOptions<T> {
  prefix: string;
  /** Follow every key from `prefix` up to this one (excluded), not only those under `prefix`. */
  end?: string;
  decoder: KeyDecoder<T>;
  /** Called once per etcd response and once per list; changes of keys the decoder does not own are left out. */
  deliver: (d: Delivery<T>) => void;
  /**
   * A value that does not decode: it is reported here and counts as absent, so an object whose
   * value turns invalid gets a delete, in a watch as in a relist.
   */
  onInvalid?: (key: string, err: Error) => void;
  /** Each time the watch is re-established after a broken stream or a cancellation. */
  onRestart?: (reason: RestartReason, err: Error) => void;
  /** Start watching from this revision, without a first list (the objects before it are unknown). */
  fromRevision?: string;
  /** Waits before a reconnect or a list retry. */
  delay?: (ms: number) => Promise<void>;
  reconnect?: Backoff;
}

export interface ListWatch {
  /** Revision of the last delivery (or of the starting point); undefined before the first list. */
  readonly revision: string | undefined;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function listWatch<T>(range: KeyRange, opts: ListWatchOptions<T>): ListWatch {
  return new ListWatchLoop(range, opts);
}

class ListWatchLoop<T> implements ListWatch {
  private readonly items = new Map<string, T>();
  private last: bigint | undefined;
  private closed = false;
  private stream: { cancel(): Promise<void> } | undefined;
  private readonly delay: (ms: number) => Promise<void>;
  private readonly reconnect: Backoff;

  constructor(
    private readonly range: KeyRange,
    private readonly opts: ListWatchOptions<T>,
  ) {
    this.delay = opts.delay ?? sleep;
    this.reconnect = opts.reconnect ?? new Backoff(100, 2_000);
    if (opts.fromRevision === undefined) void this.relist();
    else {
      this.last = BigInt(opts.fromRevision) - 1n;
      this.watch();
    }
  }

  get revision(): string | undefined {
    return this.last?.toString();
  }

  private span(): KeySpan {
    return this.opts.end === undefined ? { prefix: this.opts.prefix } : { prefix: this.opts.prefix, end: this.opts.end };
  }

  private async relist(): Promise<void> {
    while (!this.closed) {
      let listed: Awaited<ReturnType<KeyRange['list']>>;
      try {
        listed = await this.range.list(this.span());
      } catch {
        await this.delay(this.reconnect.next());
        continue;
      }
      if (this.closed) return;
      // The delay starts over only once a watch connects: a list that works followed by a watch
      // that etcd refuses at once must not retry at the shortest delay forever.
      const fresh = new Map<string, T>();
      for (const [key, value, modRevision] of listed.kvs) {
        const object = this.decode(key, value, modRevision);
        if (object !== undefined) fresh.set(key, object);
      }
      const { revision } = listed;
      const changes: Change<T>[] = [];
      for (const key of this.items.keys()) if (!fresh.has(key)) changes.push({ type: 'delete', key, revision });
      for (const [key, object] of fresh) changes.push({ type: 'put', key, object, revision });
      this.items.clear();
      for (const [key, object] of fresh) this.items.set(key, object);
      this.last = BigInt(revision);
      this.opts.deliver({ changes, items: this.items, revision, relisted: true });
      this.watch();
      return;
    }
  }

  private watch(): void {
    if (this.closed) return;
    let alive = true;
    let stream: { cancel(): Promise<void> } | undefined;
    const current = () => alive && !this.closed;
    const end = () => {
      alive = false;
      void stream?.cancel().catch(() => undefined);
      if (this.stream === stream) this.stream = undefined;
    };
    stream = this.range.watch(this.span(), ((this.last ?? 0n) + 1n).toString(), {
      connected: () => {
        if (current()) this.reconnect.reset();
      },
      changes: (batch) => {
        if (current()) this.apply(batch);
      },
      broken: (err) => {
        if (!current()) return;
        end();
        this.opts.onRestart?.('disconnected', err);
        void this.delay(this.reconnect.next()).then(() => this.watch());
      },
      canceled: (compacted, err) => {
        if (!current()) return;
        end();
        this.opts.onRestart?.(compacted ? 'compacted' : 'canceled', err);
        // After a compaction the lost history is replaced by a list at once; another cancellation
        // may repeat, so it waits like a reconnect.
        void (compacted ? Promise.resolve() : this.delay(this.reconnect.next())).then(() => this.relist());
      },
    });
    if (alive) this.stream = stream;
    else void stream.cancel().catch(() => undefined); // ended before watch() returned
  }

  private apply(batch: RawChange[]): void {
    const changes: Change<T>[] = [];
    for (const raw of batch) {
      const revision = BigInt(raw.revision);
      if (this.last === undefined || revision > this.last) this.last = revision;
      if (!this.opts.decoder.owns(raw.key)) continue;
      const object = raw.type === 'put' ? this.decode(raw.key, raw.value, raw.revision) : undefined;
      if (object !== undefined) {
        this.items.set(raw.key, object);
        changes.push({ type: 'put', key: raw.key, object, revision: raw.revision });
      } else if (raw.type === 'delete' || this.items.has(raw.key)) {
        // A delete passes even for a key never seen: a watch from a given revision starts blind.
        this.items.delete(raw.key);
        changes.push({ type: 'delete', key: raw.key, revision: raw.revision });
      }
    }
    if (changes.length > 0) this.opts.deliver({ changes, items: this.items, revision: this.last!.toString(), relisted: false });
  }

  /** The object, or undefined for a key that is not watched or whose value is invalid (reported). */
  private decode(key: string, value: string, modRevision: string): T | undefined {
    if (!this.opts.decoder.owns(key)) return undefined;
    try {
      return this.opts.decoder.decode(key, value, modRevision);
    } catch (err) {
      this.opts.onInvalid?.(key, err as Error);
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const stream = this.stream;
    this.stream = undefined;
    if (stream) await stream.cancel().catch(() => undefined);
  }
}
