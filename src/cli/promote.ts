import type { Command } from 'commander';
import { NotFoundError } from '../api/errors.js';
import { resourceName, serviceName } from '../api/primitives.js';
import type { PromotionRequest } from '../api/status.js';
import type { EtcdClient } from '../store/client.js';
import { writePromotion } from '../store/promotions.js';
import { StatusStore } from '../store/status.js';
import { runAction, UsageError } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

/**
 * `berth promote env NAME SERVICE`: records a promotion request (src/store/promotions.ts) for the
 * colour that waits for it, copied from the service's `status.services.<service>.pending`. A
 * request for an image that is no longer pending does nothing.
 */
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
  const req: PromotionRequest = { color: pending.color, image: pending.image, requestedAt: now.toISOString() };
  await writePromotion(client, env, service, req);
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
