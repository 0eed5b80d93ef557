/**
 * Errors that cross layer boundaries. Every layer may import these; they import nothing.
 */

/** Where a piece of user input came from, so an error can name the file, the document and the field. */
export interface InputLocation {
  /** File path as the user gave it, or `-` for standard input. */
  file: string;
  /** 1-based index of the YAML document inside the file; 0 for a problem with the file as a whole. */
  document: number;
}

export interface FieldProblem {
  /** Dotted path to the offending field, e.g. `spec.services.api.replicas`. */
  path: string;
  message: string;
}

/** Bad user input (a malformed spec, an unknown field, an unknown flag value). CLI exit code 2. */
export class InvalidInputError extends Error {
  readonly problems: FieldProblem[];
  readonly location: InputLocation | undefined;

  constructor(problems: FieldProblem[], location?: InputLocation) {
    super(formatProblems(problems, location));
    this.name = 'InvalidInputError';
    this.problems = problems;
    this.location = location;
  }
}

/**
 * A stored resource that does not pass its schema (a raw write: etcdctl, an older berth).
 * `revision` is the key's etcd mod_revision: one bad write, however often it is read.
 */
export class InvalidStoredResourceError extends InvalidInputError {
  readonly revision: string;

  constructor(cause: InvalidInputError, revision: string) {
    super(cause.problems, cause.location);
    this.name = 'InvalidStoredResourceError';
    this.revision = revision;
  }
}

export function formatProblems(problems: FieldProblem[], location?: InputLocation): string {
  if (location?.document === 0) return problems.map((p) => `${location.file}: ${p.message}`).join('\n');
  const where = location ? `${location.file}:${location.document}: ` : '';
  return problems.map((p) => `${where}${p.path || '(document)'}: ${p.message}`).join('\n');
}

/**
 * A failure of an external system (etcd, Docker, nginx). `recoverable` tells a caller whether
 * trying again later can help (a timeout, a connection refused) or not (a 4xx from Docker).
 */
export class AdapterError extends Error {
  readonly operation: string;
  readonly recoverable: boolean;

  constructor(operation: string, message: string, opts: { cause?: unknown; recoverable: boolean }) {
    super(`${operation}: ${message}`, { cause: opts.cause });
    this.name = 'AdapterError';
    this.operation = operation;
    this.recoverable = opts.recoverable;
  }
}

/**
 * A value read back from the store that is not what berth writes there (not JSON, or not of its
 * schema): someone wrote the key by hand, or an older berth did. Not recoverable by retrying.
 */
export class InvalidStoredValueError extends AdapterError {
  readonly key: string;

  constructor(key: string, problem: string, cause?: unknown) {
    super(`get ${key}`, `stored value is not valid: ${problem}`, { cause, recoverable: false });
    this.name = 'InvalidStoredValueError';
    this.key = key;
  }
}

/** The resource does not exist. */
export class NotFoundError extends Error {
  constructor(kind: string, name: string) {
    super(`${kind} "${name}" not found`);
    this.name = 'NotFoundError';
  }
}

/** A compare-and-swap lost against a concurrent writer; re-read and try again. */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}

/**
 * A write refused because this process does not hold leadership (any more): the leader key in
 * etcd is gone or another's, or the lease is not known to be held for long enough to issue a
 * Docker mutation. Retrying cannot help; the reconcile stops and the process campaigns again.
 */
export class NotLeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotLeaderError';
  }
}
