import { NotLeaderError } from '../api/errors.js';

/** Proof of leadership: the leader key in etcd and the create revision it had when this process won. */
export interface FenceToken {
  key: string;
  createRevision: string;
}

/**
 * What a fenced store asks of leadership. Every controller write to etcd is a transaction
 * that compares the leader key's create revision with the token's: a process that lost its
 * lease (paused, partitioned) writes nothing, whatever it still believes.
 */
export interface Fence {
  /** The token while leading; throws NotLeaderError otherwise. */
  token(): FenceToken;
  /** A fenced write found the token stale: leadership is lost, step down now. */
  lost(err: NotLeaderError): void;
}

export function staleFence(operation: string, token: FenceToken): NotLeaderError {
  return new NotLeaderError(`${operation}: refused, leader key ${token.key} (revision ${token.createRevision}) is no longer this process's`);
}
