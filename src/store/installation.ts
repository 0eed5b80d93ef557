import { randomBytes } from 'node:crypto';
import type { EtcdClient } from './client.js';

/** `<prefix>/installation`: the id every Swarm object this installation makes is labelled with. */
export function installationKey(prefix: string): string {
  return `${prefix}/installation`;
}

/**
 * The prefix's installation id, created by the first controller to ask: a create-if-absent
 * transaction, so replicas starting together agree on one id. A stored id is never replaced.
 */
export async function ensureInstallation(client: EtcdClient): Promise<{ id: string; created: boolean }> {
  const key = installationKey(client.prefix);
  const candidate = randomBytes(8).toString('hex');
  const res = await client.call(`create ${key}`, () =>
    client.etcd.if(key, 'Create', '==', 0).then(client.etcd.put(key).value(candidate)).else(client.etcd.get(key)).commit(),
  );
  if (res.succeeded) return { id: candidate, created: true };
  const kv = res.responses[0]?.response_range?.kvs[0];
  const id = kv?.value.toString().trim();
  if (!id) throw client.wrap(`get ${key}`, new Error('the installation key is empty'));
  return { id, created: false };
}

/** The prefix's installation id, or undefined before any controller ran on it (read-only: for the CLI). */
export async function readInstallation(client: EtcdClient): Promise<string | undefined> {
  const key = installationKey(client.prefix);
  const raw = await client.call(`get ${key}`, () => client.etcd.get(key).string());
  return raw?.trim() || undefined;
}
