import type { EtcdClient } from './client.js';

/**
 * `berth gc --confirm` releases a held deletion by writing `<prefix>/gc/environments/<env>`
 * (`{"releasedAt": ISO}`). The controller then deletes what the orphaned environment owned,
 * whatever the grace or the mass-deletion brake, and removes the key with the rest.
 */
export function gcReleaseKey(prefix: string, env: string): string {
  return `${prefix}/gc/environments/${env}`;
}

export async function writeGcRelease(client: EtcdClient, env: string, now: Date): Promise<void> {
  const key = gcReleaseKey(client.prefix, env);
  await client.call(`put ${key}`, () => client.etcd.put(key).value(JSON.stringify({ releasedAt: now.toISOString() })).exec());
}

export async function isGcReleased(client: EtcdClient, env: string): Promise<boolean> {
  const key = gcReleaseKey(client.prefix, env);
  return (await client.call(`get ${key}`, () => client.etcd.get(key).string())) !== null;
}

export async function clearGcRelease(client: EtcdClient, env: string): Promise<void> {
  const key = gcReleaseKey(client.prefix, env);
  await client.call(`delete ${key}`, () => client.etcd.delete().key(key).exec());
}
