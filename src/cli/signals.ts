import type { Logger } from 'pino';

export interface ShutdownSignals {
  /** Resolves on the first SIGTERM/SIGINT (or when `trigger` is called). */
  readonly requested: Promise<void>;
  /** Whether a signal (not `trigger`) started the shutdown. */
  readonly bySignal: boolean;
  /** Starts the shutdown from inside, e.g. after a fatal error. */
  trigger(): void;
  dispose(): void;
}

/**
 * How the long-running commands shut down: the first SIGTERM/SIGINT asks for a graceful
 * drain, a second one exits at once (exit code 130), as an operator pressing Ctrl-C twice expects.
 */
export function handleShutdownSignals(log: Logger, action = 'draining'): ShutdownSignals {
  let wake: () => void = () => {};
  const requested = new Promise<void>((resolve) => (wake = resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    log.info({ signal }, `signal received: ${action}`);
    wake();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return {
    requested,
    get bySignal() {
      return signals > 0;
    },
    trigger: () => wake(),
    dispose: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}
