/** Time, injected so backoff, requeue-after, deadlines and periodic loops are tested in zero real time. */
export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`, however long (see withLongTimers); realClock does. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/**
 * The longest delay Node's setTimeout takes (2^31-1 ms, about 24.8 days). A longer one is not
 * refused: it fires after 1 ms (TimeoutOverflowWarning), so a requeue for a 30-day ttl would
 * spin the reconcile loop.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `base` with timers of any length: a delay past MAX_TIMER_MS is waited out in chunks of at most
 * that, each re-arming the next, so the callback fires once, when the whole delay has passed.
 */
export function withLongTimers(base: Clock): Clock {
  return {
    now: () => base.now(),
    setTimer(fn, ms) {
      const handle: { current?: unknown } = {};
      const arm = (left: number) => {
        const chunk = Math.min(left, MAX_TIMER_MS);
        handle.current = base.setTimer(() => (left > chunk ? arm(left - chunk) : fn()), chunk);
      };
      arm(ms);
      return handle;
    },
    clearTimer: (handle) => base.clearTimer((handle as { current?: unknown }).current),
  };
}

const nodeTimers: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending requeue must not keep a stopping process alive.
    t.unref?.();
    return t;
  },
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

export const realClock: Clock = withLongTimers(nodeTimers);

/**
 * Waits `ms` on `clock`, or less when `signal` aborts; never rejects. The abort listener goes
 * with the timer, so a loop that sleeps for days does not pile up listeners on its signal.
 */
export function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const wake = () => {
      clock.clearTimer(handle);
      signal.removeEventListener('abort', wake);
      resolve();
    };
    const handle = clock.setTimer(wake, ms);
    signal.addEventListener('abort', wake, { once: true });
  });
}
