import { approvalRequestSchema, rollbackRequestSchema, type ApprovalRequest, type RollbackRequest } from '../api/status.js';
import type { EtcdClient } from './client.js';

/**
 * What `berth approve` and `berth rollback` ask of an environment with `spec.promotion`:
 * `<prefix>/releases/<env>/approval` and `<prefix>/releases/<env>/rollback`, JSON. The controller
 * reads them and never writes them; a request that no longer applies (another release, a later
 * promotion) is ignored. A value that is not a valid request is ignored too.
 */
export function releaseRequestKey(prefix: string, env: string, kind: 'approval' | 'rollback'): string {
  return `${releaseRequestsPrefix(prefix)}${env}/${kind}`;
}

export function releaseRequestsPrefix(prefix: string): string {
  return `${prefix}/releases/`;
}

/** The environment a request key concerns, or undefined for any other key. */
export function envOfReleaseRequestKey(prefix: string, key: string): string | undefined {
  const rest = key.startsWith(releaseRequestsPrefix(prefix)) ? key.slice(releaseRequestsPrefix(prefix).length).split('/') : [];
  return rest.length === 2 && rest[0] && (rest[1] === 'approval' || rest[1] === 'rollback') ? rest[0] : undefined;
}

async function read<T>(client: EtcdClient, key: string, parse: (v: unknown) => { success: boolean; data?: T }): Promise<T | undefined> {
  const raw = await client.call(`get ${key}`, () => client.etcd.get(key).string());
  if (raw === null) return undefined;
  try {
    const parsed = parse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function readApproval(client: EtcdClient, env: string): Promise<ApprovalRequest | undefined> {
  return read(client, releaseRequestKey(client.prefix, env, 'approval'), (v) => approvalRequestSchema.safeParse(v));
}

export function readRollback(client: EtcdClient, env: string): Promise<RollbackRequest | undefined> {
  return read(client, releaseRequestKey(client.prefix, env, 'rollback'), (v) => rollbackRequestSchema.safeParse(v));
}

export async function writeApproval(client: EtcdClient, env: string, request: ApprovalRequest): Promise<void> {
  const key = releaseRequestKey(client.prefix, env, 'approval');
  await client.put(`put ${key}`, client.etcd.put(key).value(JSON.stringify(request)));
}

export async function writeRollback(client: EtcdClient, env: string, request: RollbackRequest): Promise<void> {
  const key = releaseRequestKey(client.prefix, env, 'rollback');
  await client.put(`put ${key}`, client.etcd.put(key).value(JSON.stringify(request)));
}

/** Both requests of an environment that is gone. */
export async function clearReleaseRequests(client: EtcdClient, env: string): Promise<void> {
  const prefix = `${client.prefix}/releases/${env}/`;
  await client.delete(`delete ${prefix}`, client.etcd.delete().prefix(prefix));
}
