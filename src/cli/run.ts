import { InvalidInputError } from '../api/errors.js';
import { EtcdSecurityError } from '../store/etcd-security.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_INVALID = 2;

/** Thrown for a bad flag or argument combination; exits 2 like any invalid input. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Wraps a command's action so every command maps errors to exit codes the same way:
 * invalid input and usage 2, anything else 1. The action may return its own exit code.
 */
export function runAction<A extends unknown[]>(
  fn: (...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      process.exitCode = code ?? EXIT_OK;
    } catch (err) {
      process.exitCode = exitCodeFor(err);
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  };
}

export function exitCodeFor(err: unknown): number {
  return err instanceof InvalidInputError || err instanceof UsageError || err instanceof EtcdSecurityError ? EXIT_INVALID : EXIT_FAILURE;
}
