import { promotionRequestSchema, type PromotionRequest } from '../api/status.js';
import type { EtcdClient } from './client.js';

/**
 * Promotion requests for blue-green services that wait for `berth promote` (autoPromote: false):
 * key `<prefix>/promotions/<env>/<service>`, value JSON `{"color","image","requestedAt"}`. The
 * controller cuts over when the pending colour and image still match, then deletes the key.
 */
export function promotionKey(prefix: string, env: string, service: string): string {
  return `${prefix}/promotions/${env}/${service}`;
}

/** The request, or undefined when there is none or it is not a valid request (it is then ignored). */
export async function readPromotion(client: EtcdClient, env: string, service: string): Promise<PromotionRequest | undefined> {
  const key = promotionKey(client.prefix, env, service);
  const raw = await client.call(`get ${key}`, () => client.etcd.get(key).string());
  if (raw === null) return undefined;
  try {
    const parsed = promotionRequestSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function writePromotion(client: EtcdClient, env: string, service: string, request: PromotionRequest): Promise<void> {
  const key = promotionKey(client.prefix, env, service);
  await client.put(`put ${key}`, client.etcd.put(key).value(JSON.stringify(request)));
}

export async function clearPromotion(client: EtcdClient, env: string, service: string): Promise<void> {
  const key = promotionKey(client.prefix, env, service);
  await client.delete(`delete ${key}`, client.etcd.delete().key(key));
}

/** Every request of an environment, when the environment is gone. */
export async function clearPromotions(client: EtcdClient, env: string): Promise<void> {
  const prefix = `${client.prefix}/promotions/${env}/`;
  await client.delete(`delete ${prefix}`, client.etcd.delete().prefix(prefix));
}
