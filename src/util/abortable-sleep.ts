import { setTimeout as delay } from 'node:timers/promises';

/**
 * Waits `ms`, or less when `signal` aborts; never rejects. Built on timers/promises so the
 * abort listener goes away with the timer: loops that sleep for days must not pile up listeners.
 */
export async function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch {
    // Aborted: the caller checks signal.aborted.
  }
}

/**
 * A signal for one attempt of a long-lived loop, aborted with `parent`. Libraries that attach
 * listeners to the signal they are given (an HTTP request does) then attach them to this
 * short-lived signal, not to the loop's, which would keep one per attempt for its whole life.
 */
export function childSignal(parent: AbortSignal): { signal: AbortSignal; release: () => void } {
  const child = new AbortController();
  const onAbort = () => child.abort(parent.reason);
  if (parent.aborted) child.abort(parent.reason);
  else parent.addEventListener('abort', onAbort, { once: true });
  return { signal: child.signal, release: () => parent.removeEventListener('abort', onAbort) };
}
