import type { Kind, Resource } from '../api/resource.js';
import type { EtcdClient } from './client.js';
import { etcdRange } from './etcd-range.js';
import { parseResourceKey, resourcePrefix, resourcesSpan } from './keys.js';
import { listWatch, type Change, type Delivery, type KeyDecoder, type ListWatch, type RestartReason } from './listwatch.js';
import { decodeResource, withStoredGeneration } from './resources.js';

export type { RestartReason } from './listwatch.js';

export type WatchEvent =
  | { type: 'put'; kind: Kind; name: string; resource: Resource; revision: string }
  | { type: 'delete'; kind: Kind; name: string; revision: string }
  /**
   * The full current set of the watched kind(s) at `revision`. Sent first when no start
   * revision is given, and whenever the revision to resume from was compacted away. What
   * vanished since the previous list comes just before it as deletes; a consumer may as well
   * replace its view with `items`.
   */
  | { type: 'relist'; kind: Kind | 'all'; items: Resource[]; revision: string };

export interface WatchOptions {
  /** Called each time the etcd watch is re-established after a disconnect or a compaction. */
  onRestart?: (reason: RestartReason, err: Error) => void;
  /**
   * Called for a stored value that does not pass the schema; it is skipped (a resource that was
   * valid before gets a delete).
   */
  onInvalid?: (key: string, err: Error) => void;
}

export interface ResourceWatch extends AsyncIterableIterator<WatchEvent> {
  close(): Promise<void>;
  /** Revision of the last event delivered to the queue (or of the last relist). */
  readonly lastRevision: string | undefined;
}

/**
 * Watches EnvironmentGroups, Environments or both and yields their events in revision order, over
 * the list + watch loop (listwatch.ts: resumes after a broken stream, relists after a compaction).
 * Without `fromRevision` the iterator starts with a `relist` of the current set.
 */
export function watchResources(client: EtcdClient, kind: Kind | 'all', fromRevision?: string, opts: WatchOptions = {}): ResourceWatch {
  return new ResourceWatcher(client, kind, fromRevision, opts);
}

/**
 * The groups and environments under `prefix` as a read of the store gives them
 * (ResourceStore.getStored): validated, and with the generation their spec really has, which
 * for a value written raw (etcdctl, no spec hash) is the key's mod_revision. A reader of the
 * watch (the controller's resource informer) then sees the same resource as a read would.
 */
export function resourceDecoder(prefix: string, kind: Kind | 'all'): KeyDecoder<Resource> {
  return {
    owns: (key) => {
      const ref = parseResourceKey(prefix, key);
      return ref !== undefined && (kind === 'all' || ref.kind === kind);
    },
    decode: (key, value, modRevision) => withStoredGeneration(decodeResource(parseResourceKey(prefix, key)!.kind, key, value), modRevision),
  };
}

class ResourceWatcher implements ResourceWatch {
  private readonly queue: WatchEvent[] = [];
  private waiting: ((r: IteratorResult<WatchEvent>) => void) | undefined;
  private closed = false;
  private readonly loop: ListWatch;

  constructor(
    client: EtcdClient,
    private readonly kind: Kind | 'all',
    fromRevision: string | undefined,
    opts: WatchOptions,
  ) {
    const prefix = client.prefix;
    this.loop = listWatch<Resource>(etcdRange(client), {
      ...(kind === 'all' ? resourcesSpan(prefix) : { prefix: resourcePrefix(prefix, kind) }),
      decoder: resourceDecoder(prefix, kind),
      deliver: (d) => this.deliver(d, prefix),
      ...(fromRevision !== undefined ? { fromRevision } : {}),
      ...(opts.onInvalid ? { onInvalid: opts.onInvalid } : {}),
      ...(opts.onRestart ? { onRestart: opts.onRestart } : {}),
    });
  }

  get lastRevision(): string | undefined {
    return this.loop.revision;
  }

  private deliver(d: Delivery<Resource>, prefix: string): void {
    // A relist's puts travel as its `items`.
    for (const change of d.changes) if (!d.relisted || change.type === 'delete') this.push(toEvent(change, prefix));
    if (d.relisted) this.push({ type: 'relist', kind: this.kind, items: [...d.items.values()], revision: d.revision });
  }

  private push(event: WatchEvent): void {
    if (this.closed) return;
    const waiter = this.waiting;
    if (waiter) {
      this.waiting = undefined;
      waiter({ value: event, done: false });
    } else this.queue.push(event);
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    const event = this.queue.shift();
    if (event) return Promise.resolve({ value: event, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  async return(): Promise<IteratorResult<WatchEvent>> {
    await this.close();
    return { value: undefined, done: true };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    const waiter = this.waiting;
    this.waiting = undefined;
    waiter?.({ value: undefined, done: true });
    await this.loop.close();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

function toEvent(change: Change<Resource>, prefix: string): WatchEvent {
  const { kind, name } = parseResourceKey(prefix, change.key)!;
  return change.type === 'put'
    ? { type: 'put', kind, name, resource: change.object, revision: change.revision }
    : { type: 'delete', kind, name, revision: change.revision };
}
