/** Time, injected so backoff, requeue-after, deadlines and periodic loops are tested in zero real time. */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending requeue must not keep a stopping process alive.
    t.unref?.();
    return t;
  },
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

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
