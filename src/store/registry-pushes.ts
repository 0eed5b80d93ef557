import { z } from 'zod';
import { pushKey, type TagPush } from '../registry/notifications.js';
import type { EtcdClient } from './client.js';

/**
 * Tag pushes a registry notified (`POST /registry/notifications` on any controller replica):
 * key `<prefix>/registry-pushes/<repository:tag, URI-encoded>`, value JSON `{repository, tag,
 * digest, at}`, on a lease of PUSH_TTL_SECONDS so that the keys go by themselves. Like a `berth
 * run` request, a push is a request (re-resolve this tag now), not state: any replica writes it,
 * unfenced, and the leader watches the prefix. The leader never acts on the digest itself; it
 * asks the registry again.
 */
export const PUSH_TTL_SECONDS = 600;

export const registryPushSchema = z.strictObject({ repository: z.string(), tag: z.string(), digest: z.string(), at: z.string() });
export type RegistryPush = z.infer<typeof registryPushSchema>;

export function registryPushesPrefix(prefix: string): string {
  return `${prefix}/registry-pushes/`;
}

export function registryPushKey(prefix: string, push: Pick<TagPush, 'repository' | 'tag'>): string {
  return `${registryPushesPrefix(prefix)}${encodeURIComponent(pushKey(push.repository, push.tag))}`;
}

/** `repository:tag` of a push key, or undefined for any other key. */
export function pushOfKey(prefix: string, key: string): string | undefined {
  const base = registryPushesPrefix(prefix);
  if (!key.startsWith(base) || key.length === base.length) return undefined;
  try {
    return decodeURIComponent(key.slice(base.length));
  } catch {
    return undefined;
  }
}

/** Records the pushes, each on its own short lease (not kept alive: the key expires after PUSH_TTL_SECONDS). */
export async function writeRegistryPushes(client: EtcdClient, pushes: TagPush[], now: Date): Promise<void> {
  if (pushes.length === 0) return;
  const lease = client.etcd.lease(PUSH_TTL_SECONDS, { autoKeepAlive: false });
  try {
    for (const p of pushes) {
      const key = registryPushKey(client.prefix, p);
      const value: RegistryPush = { ...p, at: now.toISOString() };
      await client.call(`put ${key}`, () => lease.put(key).value(JSON.stringify(value)).exec());
    }
  } finally {
    lease.release();
  }
}
