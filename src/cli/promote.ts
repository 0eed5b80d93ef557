import type { Command } from 'commander';
import { NotFoundError } from '../api/errors.js';
import { resourceName, serviceName } from '../api/primitives.js';
import { colorSchema, type Color } from '../api/status.js';
import type { PromotionRequest } from '../reconcile/bluegreen.js';
import type { EtcdClient } from '../store/client.js';
import { StatusStore } from '../store/status.js';
import { runAction, UsageError } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

/**
 * `berth promote env NAME SERVICE`: records a promotion request for the green that waits for it
 * (autoPromote: false). The request is etcd key `<prefix>/promotions/<env>/<service>` whose value
 * is JSON `{"color":"green","image":"reg/web:v2","requestedAt":"…"}`, copied from the service's
 * `status.services.<service>.pending`. The controller cuts over when the pending colour and image
 * still match, then deletes the key. A request for an image that is no longer pending does nothing.
 */
export function promotionKey(prefix: string, env: string, service: string): string {
  return `${prefix}/promotions/${env}/${service}`;
}

export async function readPromotion(client: EtcdClient, env: string, service: string): Promise<PromotionRequest | undefined> {
  const key = promotionKey(client.prefix, env, service);
  const raw = await client.call(`get ${key}`, () => client.etcd.get(key).string());
  if (raw === null) return undefined;
  try {
    const v = JSON.parse(raw) as { color?: unknown; image?: unknown; requestedAt?: unknown };
    const color = colorSchema.safeParse(v.color);
    if (!color.success || typeof v.image !== 'string') return undefined;
    return { color: color.data, image: v.image, ...(typeof v.requestedAt === 'string' ? { requestedAt: v.requestedAt } : {}) };
  } catch {
    return undefined;
  }
}

export async function clearPromotion(client: EtcdClient, env: string, service: string): Promise<void> {
  const key = promotionKey(client.prefix, env, service);
  await client.call(`delete ${key}`, () => client.etcd.delete().key(key).exec());
}

export async function requestPromotion(client: EtcdClient, env: string, service: string, now = new Date()): Promise<PromotionRequest> {
  const status = await new StatusStore(client).getStatus('Environment', env);
  if (!status) throw new NotFoundError('environment status', env);
  const svc = status.services[service];
  if (!svc) throw new NotFoundError(`service in environment ${env}`, service);
  const pending = svc.pending;
  if (!pending) {
    throw new Error(`${env}/${service}: nothing waits for promotion (active colour ${svc.activeColor ?? 'none'}, image ${svc.image})`);
  }
  if (pending.state === 'Abandoned') throw new Error(`${env}/${service}: ${pending.color} (${pending.image}) was abandoned; change the spec to retry`);
  const req: PromotionRequest = { color: pending.color as Color, image: pending.image, requestedAt: now.toISOString() };
  const key = promotionKey(client.prefix, env, service);
  await client.call(`put ${key}`, () => client.etcd.put(key).value(JSON.stringify(req)).exec());
  return req;
}

export function registerPromoteCommand(program: Command): void {
  addStoreOptions(
    program
      .command('promote')
      .description('cut over a blue-green service whose new colour waits for promotion (autoPromote: false)')
      .argument('<type>', 'env')
      .argument('<name>', 'environment')
      .argument('<service>', 'service in the environment'),
  ).action(
    runAction(async (type: string, name: string, service: string, flags: StoreFlags) => {
      if (type !== 'env' && type !== 'environment' && type !== 'envs') throw new UsageError('usage: berth promote env NAME SERVICE');
      if (!resourceName.safeParse(name).success) throw new UsageError(`invalid environment name "${name}"`);
      if (!serviceName.safeParse(service).success) throw new UsageError(`invalid service name "${service}"`);
      return withClient(flags, async (client) => {
        const req = await requestPromotion(client, name, service);
        process.stdout.write(`promotion of ${name}/${service} to ${req.color} (${req.image}) requested\n`);
      });
    }),
  );
}
