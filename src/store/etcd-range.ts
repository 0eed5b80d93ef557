import type { EtcdClient } from './client.js';
import { Range } from 'etcd3';
import type { KeyRange, KeySpan, RangeWatchHandlers } from './listwatch.js';

const COMPACTED = /compacted/i;

/**
 * The list + watch loop's two calls on etcd (checked against etcd3@1's watch.js):
 * - a list goes through `client.call` (deadline, retries, AdapterError);
 * - the library reports a broken stream with `disconnected` and would reconnect on its own from
 *   the revision in the last response header; the loop instead drops that watcher and opens a
 *   new one from the last revision it delivered + 1, so nothing between is skipped or repeated.
 *   With the watcher dropped, the library's own reconnect finds no watcher to serve;
 * - a compacted start revision makes etcd cancel the watch. etcd3@1 loses the response's
 *   compact_revision and reports "Watcher canceled: " with an empty reason, so the start
 *   revision is probed to tell a compaction from other cancellations.
 */
export function etcdRange(client: EtcdClient): KeyRange {
  return {
    async list(span) {
      const res = await client.call(`list ${span.prefix}`, () => client.etcd.getAll().inRange(rangeOf(span)).exec());
      return { kvs: res.kvs.map((kv) => [kv.key.toString(), kv.value.toString(), kv.mod_revision]), revision: res.header.revision };
    },
    watch(span, fromRevision, on: RangeWatchHandlers) {
      const w = client.etcd.watch().inRange(rangeOf(span)).startRevision(fromRevision).watcher();
      w.on('connected', () => on.connected());
      w.on('data', (res) => {
        on.changes(
          res.events.map((ev) => ({
            type: ev.type === 'Delete' ? 'delete' : 'put',
            key: ev.kv.key.toString(),
            value: ev.type === 'Delete' ? '' : ev.kv.value.toString(),
            revision: ev.kv.mod_revision,
          })),
        );
      });
      w.on('disconnected', (err: Error) => on.broken(err));
      w.on('error', (err: Error) => void isCompacted(client, span.prefix, fromRevision).then((compacted) => on.canceled(compacted, err)));
      return { cancel: () => w.cancel() };
    },
  };
}

function rangeOf(span: KeySpan): Range {
  return span.end === undefined ? Range.prefix(span.prefix) : new Range(span.prefix, span.end);
}

async function isCompacted(client: EtcdClient, prefix: string, revision: string): Promise<boolean> {
  try {
    await client.etcd.get(prefix).revision(revision).exec();
    return false;
  } catch (err) {
    return COMPACTED.test((err as Error).message);
  }
}
