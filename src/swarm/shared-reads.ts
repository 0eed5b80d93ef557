/** Ids waiting for their call, and the call (not begun until `open`). */
interface Batch {
  ids: string[];
  open: () => void;
  done: Promise<void>;
}

/**
 * Reads of one kind of object by id (nodes, services, a service's tasks), shared by the readers
 * as a group commit shares a write: the ids asked for while a call of the kind is on its way wait
 * and go together, `perCall` ids a call, once every call on its way answered. A cold start's
 * readers each want a few ids at the same time; one call reads them all. A reader waits for the
 * calls that hold its ids (and, for those, the calls on their way before), not for the others.
 *
 * Each object has a mark (`marks`): set when it changed, taken when a call reading it begins (so
 * a mark set after that survives the call), and set again when the call fails, so that the next
 * reader reads it again.
 */
export class SharedReads {
  /** The call on its way of each id. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** The calls on their way, once each. */
  private readonly calls = new Set<Promise<void>>();
  /** The calls not begun, in order; each id in one at most. */
  private queued: Batch[] = [];
  private readonly queuedIds = new Map<string, Promise<void>>();

  constructor(
    private readonly readIds: (ids: string[]) => Promise<void>,
    private readonly marks: Set<string>,
    private readonly perCall: number,
  ) {}

  /**
   * Reads the ids `stale()` names, each with a call that begins after now. The calls on their way
   * for `ids` (every call of the kind when undefined) are waited for first, answered or failed:
   * until then the cache holds the values they replace, and their marks are taken, so a reader
   * that went past them would get what changed before the marks were set. `stale()` is asked
   * after that wait; an id it names that is on its way then is in a call begun since, which it
   * shares, else it goes in the next call. Rejects when a call holding one of its ids failed.
   *
   * With no call on its way it reads at once, without a turn of the event loop: another reader
   * coming right after finds the marks taken and the calls on their way.
   */
  async read(ids: Iterable<string> | undefined, stale: () => Iterable<string>): Promise<void> {
    const calls = ids === undefined ? this.calls : new Set([...ids].flatMap((id) => this.inflight.get(id) ?? []));
    if (calls.size > 0) await Promise.all([...calls].map((p) => p.catch(() => undefined)));
    const work = new Set<Promise<void>>();
    for (const id of stale()) work.add(this.inflight.get(id) ?? this.queuedIds.get(id) ?? this.enqueue(id));
    if (this.calls.size === 0) this.begin();
    if (work.size > 0) await Promise.all(work);
  }

  private enqueue(id: string): Promise<void> {
    let batch = this.queued.at(-1);
    if (!batch || batch.ids.length >= this.perCall) {
      batch = this.batch();
      this.queued.push(batch);
    }
    batch.ids.push(id);
    this.queuedIds.set(id, batch.done);
    return batch.done;
  }

  private batch(): Batch {
    const ids: string[] = [];
    let open!: () => void;
    const done: Promise<void> = new Promise<void>((r) => (open = r))
      .then(() => this.readIds(ids))
      .catch((err: unknown) => {
        for (const id of ids) this.marks.add(id);
        throw err;
      })
      .finally(() => {
        for (const id of ids) this.inflight.delete(id);
        this.calls.delete(done);
        if (this.calls.size === 0) this.begin();
      });
    return { ids, open, done };
  }

  /** Begins the calls queued; their ids' marks are taken now. */
  private begin(): void {
    const batches = this.queued;
    this.queued = [];
    for (const b of batches) {
      for (const id of b.ids) {
        this.marks.delete(id);
        this.queuedIds.delete(id);
        this.inflight.set(id, b.done);
      }
      this.calls.add(b.done);
      b.open();
    }
  }
}
