import pRetry from 'p-retry';
import { AdapterError } from '../api/errors.js';

/** Connection-level failures: the daemon may be restarting or the socket briefly unavailable. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Trying again helps for connection errors and 5xx; a 4xx (bad spec, not found, version
 * conflict) fails the same way every time, so it is not retried here — the reconcile loop
 * re-reads and re-plans instead.
 */
export function isRecoverable(err: unknown): boolean {
  const status = statusCodeOf(err);
  if (status !== undefined) return status >= 500;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECTION_CODES.has(code);
}

function messageOf(err: unknown): string {
  const json = (err as { json?: { message?: unknown } } | null)?.json;
  if (json && typeof json.message === 'string') return json.message;
  return err instanceof Error ? err.message : String(err);
}

export interface RetryOptions {
  retries?: number;
  minTimeoutMs?: number;
  onError?: (operation: string) => void;
}

/**
 * Runs one Docker call with a few quick retries; the final failure becomes an AdapterError. The
 * first attempt runs on its own: nearly every call succeeds at once, and p-retry's setup costs
 * more CPU than the call's own work before the request. A recoverable failure hands that attempt
 * to p-retry as its first, so the retries and their delays are p-retry's.
 */
export async function withRetry<T>(operation: string, fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  // Through an async function: a synchronous throw of `fn` is a failed attempt too, as in p-retry.
  const first = (async () => fn())();
  try {
    return await first;
  } catch (err) {
    if (!isRecoverable(err)) failed(operation, err, opts);
  }
  try {
    return await pRetry((attempt) => (attempt === 1 ? first : fn()), {
      retries: opts.retries ?? 2,
      minTimeout: opts.minTimeoutMs ?? 200,
      maxTimeout: 1_000,
      shouldRetry: ({ error }) => isRecoverable(error),
    });
  } catch (err) {
    failed(operation, err, opts);
  }
}

function failed(operation: string, err: unknown, opts: RetryOptions): never {
  opts.onError?.(operation);
  if (err instanceof AdapterError) throw err;
  throw new AdapterError(operation, messageOf(err), { cause: err, recoverable: isRecoverable(err) });
}
