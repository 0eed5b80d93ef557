import { AdapterError } from '../api/errors.js';

/**
 * unreachable: no answer, a timeout or a 5xx (trying again later can help).
 * not-found: the repository or tag does not exist. unauthorized: the credentials were refused or
 * missing. rejected: any other answer (a bad request, a protocol berth does not speak).
 */
export type RegistryErrorKind = 'unreachable' | 'not-found' | 'unauthorized' | 'rejected';

/** A Registry HTTP API call that failed, with its kind; only `unreachable` is recoverable. */
export class RegistryError extends AdapterError {
  readonly kind: RegistryErrorKind;
  /** HTTP status of the last answer, when there was one. */
  readonly status: number | undefined;

  constructor(operation: string, kind: RegistryErrorKind, message: string, opts: { cause?: unknown; status?: number } = {}) {
    super(operation, message, { cause: opts.cause, recoverable: kind === 'unreachable' });
    this.name = 'RegistryError';
    this.kind = kind;
    this.status = opts.status;
  }
}

export function errorKindForStatus(status: number): RegistryErrorKind {
  if (status === 404) return 'not-found';
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 429 || status >= 500) return 'unreachable';
  return 'rejected';
}
