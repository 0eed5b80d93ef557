/** Waiting on the real lab: the one poll loop of the lab tests. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` every `everyMs` until it returns a value (not undefined/false), or throws after
 * `timeoutMs` naming what it waited for, the last error `fn` threw, and `context` (a log path).
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 250, context = ''): Promise<T> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${last ? ` (last error: ${String(last)})` : ''}${context ? `; ${context}` : ''}`);
    }
    await sleep(everyMs);
  }
}

/** `until` that also records, by what it waited for, how many seconds each wait took (a test's figures). */
export function recordingUntil(figures: Record<string, unknown>, everyMs = 250) {
  return async <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> => {
    const start = Date.now();
    const value = await until(what, fn, timeoutMs, everyMs);
    figures[what] = (Date.now() - start) / 1000;
    return value;
  };
}
