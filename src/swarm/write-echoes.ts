/**
 * The events the controller's own writes raise. Docker raises one event for each node or service
 * that is created, updated or removed, its own writes' included; the cache reads back what it
 * wrote anyway (a write marks the object stale), so the event of a write read back since tells
 * nothing new, and refreshing for it would double the calls of every write (a cold start of a
 * thousand environments makes eight thousand).
 *
 * An event is taken for a write's echo only when it is safe to: after the write returned (an
 * event that arrives while the write is on its way may be the echo or another change; it is
 * handled as any event, and the write then expects none), when the write expects one, and within
 * `windowMs` of the write (should an echo ever not come, no later event is taken for it). Docker
 * delivers events in the order of the changes, so the first event after a write returned that is
 * not its echo is of a change made before it, which the read after the write saw. The cache
 * also refreshes an object that is still stale, echo or not.
 */
export class WriteEchoes {
  private readonly writes = new Map<string, { inFlight: number; early: number; expected: number; at: number; envs: Set<string> }>();
  /** Creates on their way (their object's id is not known before they return), and the objects that raised events meanwhile. */
  private creating = 0;
  private readonly seenWhileCreating = new Set<string>();
  /** What waits for the writes to a key to return (`afterWrites`). */
  private readonly waiting = new Map<string, (() => void)[]>();
  /** What waits for the creates on their way to return (`afterCreates`). */
  private readonly waitingOnCreates = new Map<string, () => void>();

  constructor(
    private readonly now: () => number,
    private readonly windowMs = 5_000,
  ) {}

  /** A write to `key` (`node/ID`, `service/ID`) starts. */
  begin(key: string): void {
    const w = this.writes.get(key) ?? { inFlight: 0, early: 0, expected: 0, at: 0, envs: new Set<string>() };
    w.inFlight++;
    this.writes.set(key, w);
  }

  /** A create starts: its object's key is known only once it returns (`endCreate`). */
  beginCreate(): void {
    this.creating++;
  }

  /** A create returned: its echo is expected unless its object raised an event while creates were on their way. */
  endCreate(key: string | undefined, envs: Iterable<string | undefined> = []): void {
    this.creating--;
    if (key !== undefined) {
      // The create marked its object stale itself.
      this.waitingOnCreates.delete(key);
      if (!this.seenWhileCreating.has(key)) {
        this.begin(key);
        this.end(key, true, envs);
      }
    }
    if (this.creating === 0) {
      this.seenWhileCreating.clear();
      const waiting = [...this.waitingOnCreates.values()];
      this.waitingOnCreates.clear();
      for (const run of waiting) run();
    }
  }

  /**
   * For an event of an object the cache does not hold yet: runs `markStale` once no create is
   * on its way, unless a create returns that very object first (most often: Docker raises a
   * create's event before it answers, and the create marks its object stale itself).
   */
  afterCreates(key: string, markStale: () => void): void {
    if (this.creating === 0) markStale();
    else this.waitingOnCreates.set(key, markStale);
  }

  /**
   * The write to `key` returned: when it succeeded, its echo is expected unless an event came
   * while it was on its way. `envs`: the environments its echo would concern (a claim's old and
   * new holder), announced when the echo arrives.
   */
  end(key: string, succeeded: boolean, envs: Iterable<string | undefined> = []): void {
    const w = this.writes.get(key);
    if (!w) return;
    w.inFlight--;
    if (succeeded) {
      if (w.early > 0) w.early--;
      else {
        w.expected++;
        w.at = this.now();
        for (const env of envs) if (env) w.envs.add(env);
      }
    }
    if (w.inFlight === 0) {
      w.early = 0;
      const waiting = this.waiting.get(key) ?? [];
      this.waiting.delete(key);
      for (const run of waiting) run();
    }
    this.forgetIfIdle(key);
  }

  /**
   * Runs `run` once no write to `key` is on its way (now, when none is): an event that arrives
   * while the cache's own write is on its way (most often its echo: Docker raises it before it
   * answers) is then read once, after the write, instead of once before and once after it.
   */
  afterWrites(key: string, run: () => void): void {
    if ((this.writes.get(key)?.inFlight ?? 0) === 0) {
      run();
      return;
    }
    const waiting = this.waiting.get(key) ?? [];
    waiting.push(run);
    this.waiting.set(key, waiting);
  }

  /**
   * An event for `key` arrived: the environments to announce when it is the echo of a write
   * already read back (`stale`: the object is still to be read again), else undefined.
   */
  echo(key: string, stale: boolean): Set<string> | undefined {
    if (this.creating > 0) this.seenWhileCreating.add(key);
    const w = this.writes.get(key);
    if (!w) return undefined;
    if (w.inFlight > 0) {
      w.early++;
      return undefined;
    }
    if (w.expected === 0 || this.now() - w.at > this.windowMs) {
      this.writes.delete(key);
      return undefined;
    }
    w.expected--;
    const envs = w.envs;
    if (w.expected === 0) w.envs = new Set();
    this.forgetIfIdle(key);
    return stale ? undefined : envs;
  }

  /** After a full list: every echo still to come is of a write the list has seen. */
  clear(): void {
    for (const [key, w] of this.writes) {
      w.expected = 0;
      w.envs = new Set();
      this.forgetIfIdle(key);
    }
  }

  private forgetIfIdle(key: string): void {
    const w = this.writes.get(key);
    if (w && w.inFlight === 0 && w.expected === 0) this.writes.delete(key);
  }
}
