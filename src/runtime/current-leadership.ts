import { NotLeaderError } from '../api/errors.js';
import type { Fence, FenceToken } from '../store/fence.js';
import type { LeaseGuard } from '../swarm/fenced-swarm.js';
import type { Leadership } from './leader.js';

/**
 * The term this process leads in, if any, as the fence that the controller's store and Swarm
 * writes consult: built once, valid across terms. Between terms every write is refused.
 */
export class CurrentLeadership implements Fence, LeaseGuard {
  private term: Leadership | undefined;

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
    this.term?.lost(err);
  }

  assertHeld(operation: string): void {
    this.held(operation).assertHeld(operation);
  }

  private held(operation: string): Leadership {
    const term = this.term;
    if (!term || term.signal.aborted) throw new NotLeaderError(`${operation}: refused, this process is not the leader`);
    return term;
  }
}
