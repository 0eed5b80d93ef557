import type { ResourceWatch, WatchEvent, WatchOptions } from '../../src/store/watch.js';

/** An in-memory resource watch: the test pushes events; the consumer iterates them. */
export class FakeResourceWatch implements ResourceWatch {
  /** What the consumer asked to be told (restarts, invalid values). */
  opts: WatchOptions = {};
  closed = false;
  private readonly pending: WatchEvent[] = [];
  private waiting: ((r: IteratorResult<WatchEvent>) => void) | undefined;

  /** A watch factory that hands out this watch and records the options it was opened with. */
  readonly open = (opts: WatchOptions): ResourceWatch => {
    this.opts = opts;
    return this;
  };

  get lastRevision(): string | undefined {
    return undefined;
  }

  push(ev: WatchEvent): void {
    const w = this.waiting;
    this.waiting = undefined;
    if (w) w({ value: ev, done: false });
    else this.pending.push(ev);
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    const ev = this.pending.shift();
    if (ev) return Promise.resolve({ value: ev, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
