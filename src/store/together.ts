/**
 * Requests asked for while a batch of them is on its way gather and go out together as the
 * next batch (a group commit): one round trip, and one etcd transaction, for the writes or reads
 * of every reconcile running at the time instead of one each. One batch is on its way at a time.
 * When none is, a batch still waits for the event loop's turn to end (setImmediate): the
 * reconciles woken by the same poll of sockets then write together too, and a lone request
 * waits only microseconds.
 */
export class Together<T, R> {
  private waiting: Waiter<T, R>[] = [];
  private sending = false;

  constructor(
    private readonly send: (batch: T[]) => Promise<R[]>,
    private readonly limits: BatchLimits<T>,
  ) {}

  /** Resolves with what `send` returned for `item` in the batch it went out in; rejects with that batch's error. */
  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.sending) return;
      this.sending = true;
      setImmediate(() => void this.sendAll());
    });
  }

  private async sendAll(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = takeBatch(this.waiting, this.limits);
      try {
        const results = await this.send(batch.map((w) => w.item));
        batch.forEach((w, i) => w.resolve(results[i]!));
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.sending = false;
  }
}

/** What one batch may hold. */
export interface BatchLimits<T> {
  /** Per request, how much it takes of each budget (operations, compares, bytes: the caller's choice). */
  cost: (item: T) => readonly number[];
  budget: readonly number[];
  /** The keys a request writes: two requests writing one key never share a batch, and keep their order. */
  keysOf?: (item: T) => readonly string[];
}

interface Waiter<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

/**
 * The next batch out of `waiting`, in order: each request that fits the budgets and shares no key
 * with the batch or with a request left behind. The first always goes, even over budget: alone,
 * it fails or passes as it would have without gathering.
 */
function takeBatch<T, R>(waiting: Waiter<T, R>[], limits: BatchLimits<T>): Waiter<T, R>[] {
  const batch: Waiter<T, R>[] = [];
  const rest: Waiter<T, R>[] = [];
  const used = limits.budget.map(() => 0);
  const taken = new Set<string>();
  const leftBehind = new Set<string>();
  for (const w of waiting) {
    const cost = limits.cost(w.item);
    const keys = limits.keysOf?.(w.item) ?? [];
    const fits = batch.length === 0 || (cost.every((c, i) => used[i]! + c <= limits.budget[i]!) && keys.every((k) => !taken.has(k) && !leftBehind.has(k)));
    if (fits) {
      batch.push(w);
      cost.forEach((c, i) => (used[i]! += c));
      for (const k of keys) taken.add(k);
    } else {
      rest.push(w);
      for (const k of keys) leftBehind.add(k);
    }
  }
  waiting.splice(0, waiting.length, ...rest);
  return batch;
}
