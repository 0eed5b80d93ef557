import { AsyncLocalStorage } from 'node:async_hooks';
import { NotLeaderError } from '../api/errors.js';
import type { Fence, FenceToken } from '../store/fence.js';
import type { LeaseGuard } from '../swarm/fenced-swarm.js';
import type { Leadership } from './leader.js';

/**
 * The term this process leads in, if any, as the fence that the controller's store and Swarm
 * writes consult: built once, valid across terms. Between terms every write is refused.
 *
 * A write is fenced by the term its work was started in, not by whichever term is current
 * when it is issued: a reconcile abandoned when term 1 ended may still be blocked on a call
 * when term 2 begins, and its next write must fail, not pass with term 2's token. The term
 * travels with the work through AsyncLocalStorage (see `within`).
 */
export class CurrentLeadership implements Fence, LeaseGuard {
  private term: Leadership | undefined;
  private readonly startedIn = new AsyncLocalStorage<Leadership>();

  /** Runs `fn` in `term`: the writes of everything it starts, however late, are fenced by that term. */
  within<T>(term: Leadership, fn: () => T): T {
    return this.startedIn.run(term, fn);
  }

  begin(term: Leadership): void {
    this.term = term;
  }

  end(): void {
    this.term = undefined;
  }

  token(): FenceToken {
    return this.held('write').token();
  }

  lost(err: NotLeaderError): void {
    (this.startedIn.getStore() ?? this.term)?.lost(err);
  }

  assertHeld(operation: string): void {
    this.held(operation).assertHeld(operation);
  }

  private held(operation: string): Leadership {
    const term = this.startedIn.getStore() ?? this.term;
    if (!term || term.signal.aborted) throw new NotLeaderError(`${operation}: refused, this process is not the leader`);
    return term;
  }
}
