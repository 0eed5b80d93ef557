/** An Engine API error: the HTTP status and the `{"message": …}` body Docker would send. */
export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

export const notFound = (kind: string, ref: string) => new EngineError(404, `${kind} ${ref} not found`);
export const invalidArgument = (desc: string) => new EngineError(400, `rpc error: code = InvalidArgument desc = ${desc}`);
/** What swarmkit answers when the version sent with an update is not the object's current one. */
export const outOfSequence = () => new EngineError(500, 'rpc error: code = Unknown desc = update out of sequence');
