import type { Logger } from 'pino';
import { AdapterError, NotLeaderError } from '../api/errors.js';
import type { BerthMetrics } from '../metrics/registry.js';
import type { Clock } from './clock.js';
import type { WorkQueue } from './queue.js';

/** What a reconcile asks of the queue when it returns normally. */
export interface ReconcileResult {
  /** Run the key again after this long (polling a convergence, or a blocked key re-checked slowly). */
  requeueAfterMs?: number;
}

/** Reconciles one queue key. `signal` aborts when the reconcile's deadline passes. */
export interface Reconciler {
  reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult | void>;
  /** The `kind` label of the key's metrics. */
  kindOf(key: string): string;
}

/**
 * An error that retrying cannot fix (controller-runtime's reconcile.TerminalError): the key is
 * not re-queued; it runs again only when one of its sources adds it.
 */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

/** A reconcile that ran past its deadline: an ordinary error, retried with backoff. */
export class DeadlineExceededError extends Error {
  constructor(key: string, timeoutMs: number) {
    super(`reconcile of ${key} exceeded its ${timeoutMs} ms deadline`);
    this.name = 'DeadlineExceededError';
  }
}

export type ReconcileOutcome = 'success' | 'requeue_after' | 'error' | 'terminal';

export interface HandlerDeps {
  queue: WorkQueue;
  reconciler: Reconciler;
  clock: Clock;
  timeoutMs: number;
  metrics: Pick<BerthMetrics, 'reconcilesTotal' | 'reconcileDuration'>;
  log: Logger;
  /**
   * Aborts every running reconcile at once (leadership lost, or the drain timed out): its
   * signal aborts and the worker stops waiting for it. What it still does is fenced.
   */
  abandon?: AbortSignal;
}

/**
 * One reconcile of one key, and the one place that maps its outcome to what the queue does
 * and what the metrics count (controller-runtime's reconcileHandler):
 *   thrown error (or deadline passed) → addRateLimited, result=error;
 *   TerminalError or NotLeaderError → forget, result=terminal, no retry;
 *   result with requeueAfterMs → forget + addAfter, result=requeue_after;
 *   otherwise → forget, result=success.
 * It never throws; the caller calls queue.done(key).
 */
export async function reconcileHandler(d: HandlerDeps, key: string): Promise<ReconcileOutcome> {
  const kind = d.reconciler.kindOf(key);
  const started = d.clock.now();
  const deadline = new AbortController();
  const timer = d.clock.setTimer(() => deadline.abort(new DeadlineExceededError(key, d.timeoutMs)), d.timeoutMs);
  // The deadline only aborts the signal: the reconcile's own calls have deadlines too, and
  // a worker that stopped waiting would let the key run twice at once.
  const abandoned = new AbortController();
  const onAbandon = () => {
    const reason = d.abandon?.reason ?? new NotLeaderError(`reconcile of ${key} abandoned`);
    abandoned.abort(reason);
    deadline.abort(reason);
  };
  if (d.abandon?.aborted) onAbandon();
  else d.abandon?.addEventListener('abort', onAbandon, { once: true });
  let outcome: ReconcileOutcome;
  try {
    const result = await Promise.race([d.reconciler.reconcile(key, deadline.signal), rejectOnAbort(abandoned.signal)]);
    deadline.signal.throwIfAborted();
    d.queue.forget(key);
    if (result?.requeueAfterMs !== undefined) {
      d.queue.addAfter(key, result.requeueAfterMs);
      outcome = 'requeue_after';
    } else outcome = 'success';
  } catch (thrown) {
    // Whatever a reconcile that ran out of time throws, the deadline is why it failed.
    const err = deadline.signal.aborted ? (deadline.signal.reason as Error) : (thrown as Error);
    if (err instanceof NotLeaderError) {
      d.queue.forget(key);
      d.log.warn({ key, err: err.message }, 'reconcile stopped: not the leader');
      outcome = 'terminal';
    } else if (err instanceof TerminalError) {
      d.queue.forget(key);
      d.log.error({ key, err: err.message }, 'reconcile failed terminally; not retrying');
      outcome = 'terminal';
    } else {
      const recoverable = err instanceof AdapterError ? err.recoverable : undefined;
      d.log.warn({ key, err: err.message, recoverable, retries: d.queue.retries(key) + 1 }, 'reconcile failed; retrying with backoff');
      d.queue.addRateLimited(key);
      outcome = 'error';
    }
  } finally {
    d.clock.clearTimer(timer);
    d.abandon?.removeEventListener('abort', onAbandon);
  }
  d.metrics.reconcilesTotal.inc({ kind, result: outcome });
  d.metrics.reconcileDuration.observe({ kind }, (d.clock.now() - started) / 1000);
  return outcome;
}

/**
 * Rejects with the signal's reason once it aborts: an abandoned reconcile releases its worker
 * even if it ignores its signal (a call hung on a paused dockerd); its writes are fenced.
 */
function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
