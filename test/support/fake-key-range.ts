import { inSpan, type KeyRange, type KeySpan, type RangeWatchHandlers, type RawChange } from '../../src/store/listwatch.js';

interface Stream {
  span: KeySpan;
  on: RangeWatchHandlers;
  open: boolean;
}

/**
 * An in-memory etcd key range for the list + watch loop: revisions, one batch per transaction,
 * compaction, streams that can be broken, lists that can fail. Watch callbacks run on a later
 * microtask, as etcd's arrive on a later I/O turn.
 */
export class FakeKeyRange implements KeyRange {
  private rev = 1;
  private compactedAt = 0;
  /** Value and mod revision of each key. */
  private readonly kvs = new Map<string, [value: string, modRevision: string]>();
  private readonly log: RawChange[] = [];
  private readonly streams: Stream[] = [];
  /** Lists still to fail before one succeeds. */
  failLists = 0;
  /** While true, etcd cannot be reached: every new stream breaks before it connects. */
  down = false;
  /** While true, etcd cancels every new watch as it is created (say, permission denied). */
  refuseWatches = false;
  lists = 0;
  /** Start revisions of every watch opened, in order. */
  readonly watchedFrom: string[] = [];

  get revision(): string {
    return String(this.rev);
  }

  /** Several puts and deletes in one revision, delivered as one batch. */
  txn(ops: { put?: [string, string]; del?: string }[]): void {
    this.rev++;
    const batch: RawChange[] = [];
    for (const op of ops) {
      if (op.put) {
        this.kvs.set(op.put[0], [op.put[1], this.revision]);
        batch.push({ type: 'put', key: op.put[0], value: op.put[1], revision: this.revision });
      } else if (op.del !== undefined && this.kvs.delete(op.del)) {
        batch.push({ type: 'delete', key: op.del, value: '', revision: this.revision });
      }
    }
    this.log.push(...batch);
    for (const s of this.streams) this.send(s, batch);
  }

  put(key: string, value: string): void {
    this.txn([{ put: [key, value] }]);
  }

  del(key: string): void {
    this.txn([{ del: key }]);
  }

  compact(): void {
    this.compactedAt = this.rev;
  }

  /** Every open stream breaks, as when the connection to etcd drops. */
  breakStreams(): void {
    for (const s of this.streams.splice(0)) {
      s.open = false;
      queueMicrotask(() => s.on.broken(new Error('stream broke')));
    }
  }

  /** etcd cancels every open stream for a reason other than compaction. */
  cancelStreams(): void {
    for (const s of this.streams.splice(0)) {
      s.open = false;
      queueMicrotask(() => s.on.canceled(false, new Error('Watcher canceled: ')));
    }
  }

  /** Open streams are the ones not broken nor canceled. */
  get openStreams(): number {
    return this.streams.length;
  }

  async list(span: KeySpan): Promise<{ kvs: [string, string, string][]; revision: string }> {
    this.lists++;
    await Promise.resolve();
    if (this.failLists > 0) {
      this.failLists--;
      throw new Error('etcd unavailable');
    }
    const kvs = [...this.kvs]
      .filter(([k]) => inSpan(span, k))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, [value, modRevision]]): [string, string, string] => [k, value, modRevision]);
    return { kvs, revision: this.revision };
  }

  watch(span: KeySpan, fromRevision: string, on: RangeWatchHandlers): { cancel(): Promise<void> } {
    this.watchedFrom.push(fromRevision);
    const stream: Stream = { span, on, open: true };
    if (this.down) {
      queueMicrotask(() => stream.open && on.broken(new Error('connection refused')));
    } else if (this.refuseWatches) {
      queueMicrotask(() => stream.open && on.canceled(false, new Error('Watcher canceled: permission denied')));
    } else if (Number(fromRevision) <= this.compactedAt) {
      queueMicrotask(() => stream.open && on.canceled(true, new Error('Watcher canceled: ')));
    } else {
      this.streams.push(stream);
      queueMicrotask(() => stream.open && on.connected());
      const missed = this.log.filter((c) => Number(c.revision) >= Number(fromRevision));
      for (const r of new Set(missed.map((c) => c.revision))) this.send(stream, missed.filter((c) => c.revision === r));
    }
    return {
      cancel: async () => {
        stream.open = false;
        const i = this.streams.indexOf(stream);
        if (i >= 0) this.streams.splice(i, 1);
      },
    };
  }

  private send(s: Stream, batch: RawChange[]): void {
    const mine = batch.filter((c) => inSpan(s.span, c.key));
    if (mine.length > 0) queueMicrotask(() => s.open && s.on.changes(mine));
  }
}
