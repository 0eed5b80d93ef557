import os from 'node:os';
import type { Command } from 'commander';
import { resourceName } from '../api/primitives.js';
import { formatAge, NotFoundError, type ApprovalRequest, type EnvironmentStatus, type RollbackRequest } from '../api/index.js';
import { previousRelease } from '../reconcile/releases/release.js';
import { specImages } from '../reconcile/releases/rollback.js';
import type { EtcdClient } from '../store/client.js';
import { writeApproval, writeRollback } from '../store/release-requests.js';
import { ResourceStore } from '../store/resources.js';
import { StatusStore } from '../store/status.js';
import { formatData, formatTable, parseOutputFormat } from './output.js';
import { runAction, UsageError } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

/** The user a request is recorded for: `--by`, else the login name. */
function requester(by: string | undefined): string {
  return by ?? (process.env.USER || os.userInfo().username);
}

function checkArgs(type: string, name: string, usage: string): void {
  if (type !== 'env' && type !== 'environment' && type !== 'envs') throw new UsageError(`usage: ${usage}`);
  if (!resourceName.safeParse(name).success) throw new UsageError(`invalid environment name "${name}"`);
}

async function statusOf(client: EtcdClient, env: string): Promise<EnvironmentStatus> {
  const status = await new StatusStore(client).getStatus('Environment', env);
  if (!status) throw new NotFoundError('environment status', env);
  return status;
}

/** `berth approve env NAME [--release ID] [--by WHO]`: records the approval the controller looks for. */
export async function approve(client: EtcdClient, env: string, opts: { release?: string; by?: string }, now = new Date()): Promise<ApprovalRequest> {
  const spec = await new ResourceStore(client).get('Environment', env);
  if (!spec) throw new NotFoundError('environment', env);
  if (!spec.spec.promotion) throw new UsageError(`environment ${env} has no spec.promotion: nothing to approve`);
  const release = opts.release ?? (await statusOf(client, env)).promotionPending?.release;
  if (!release) throw new Error(`${env}: no release waits for approval (see berth describe env ${env}); name one with --release`);
  const request: ApprovalRequest = { release, by: requester(opts.by), at: now.toISOString() };
  await writeApproval(client, env, request);
  return request;
}

/**
 * `berth rollback env NAME [--to ID] [--by WHO]`: pins an earlier release of the history. With
 * spec.promotion, until the next promotion; without, until the spec's images change.
 */
export async function rollback(client: EtcdClient, env: string, opts: { to?: string; by?: string }, now = new Date()): Promise<RollbackRequest> {
  const spec = await new ResourceStore(client).get('Environment', env);
  if (!spec) throw new NotFoundError('environment', env);
  const status = await statusOf(client, env);
  const promotion = spec.spec.promotion !== undefined;
  if (promotion && !status.promoted) throw new Error(`${env}: nothing was promoted yet, so there is nothing to roll back from`);
  if (!promotion && !status.release) throw new Error(`${env}: no release yet (it has not been Ready), so there is nothing to roll back from`);
  const target = opts.to ? status.history?.find((h) => h.id === opts.to) : previousRelease(status);
  if (!target) throw new Error(opts.to ? `${env}: release ${opts.to} is not in the history (berth history env ${env})` : `${env}: no earlier release in the history`);
  const until = promotion ? { from: status.promoted!.release } : { from: status.release!.id, specImages: specImages(spec) };
  const request: RollbackRequest = { to: target.id, images: target.images, ...until, by: requester(opts.by), at: now.toISOString() };
  await writeRollback(client, env, request);
  return request;
}

/** `berth history env NAME`: the releases, newest first, kubectl-style. */
export function formatHistory(status: EnvironmentStatus, now: Date): string {
  const rows = (status.history ?? []).map((h) => [
    h.id === status.release?.id ? `${h.id}*` : h.id,
    formatAge(now.getTime() - Date.parse(h.readySince)),
    h.from ?? '-',
    h.approvedBy ? `${h.approvedBy}${h.approvedAt ? ` (${h.approvedAt})` : ''}` : '-',
    Object.entries(h.images).sort().map(([svc, img]) => `${svc}=${img}`).join(', '),
  ]);
  return formatTable(['RELEASE', 'READY SINCE', 'FROM', 'APPROVED BY', 'IMAGES'], rows);
}

export function registerReleaseCommands(program: Command): void {
  addStoreOptions(
    program
      .command('approve')
      .description('approve the upstream release an environment with spec.promotion waits for')
      .argument('<type>', 'env')
      .argument('<name>', 'environment')
      .option('--release <id>', 'the release to approve (default: the one waiting)')
      .option('--by <who>', 'who approves (default: the login name)'),
  ).action(
    runAction(async (type: string, name: string, flags: StoreFlags & { release?: string; by?: string }) => {
      checkArgs(type, name, 'berth approve env NAME [--release ID] [--by WHO]');
      return withClient(flags, async (client) => {
        const req = await approve(client, name, flags);
        process.stdout.write(`release ${req.release} approved for ${name} by ${req.by}\n`);
      });
    }),
  );
  addStoreOptions(
    program
      .command('rollback')
      .description("run an earlier release of an environment: until the next promotion (spec.promotion), else until the spec's images change")
      .argument('<type>', 'env')
      .argument('<name>', 'environment')
      .option('--to <id>', 'the release to return to (default: the one before the current)')
      .option('--by <who>', 'who rolls back (default: the login name)'),
  ).action(
    runAction(async (type: string, name: string, flags: StoreFlags & { to?: string; by?: string }) => {
      checkArgs(type, name, 'berth rollback env NAME [--to ID] [--by WHO]');
      return withClient(flags, async (client) => {
        const req = await rollback(client, name, flags);
        process.stdout.write(`${name} rolls back to release ${req.to}\n`);
      });
    }),
  );
  addStoreOptions(
    program
      .command('history')
      .description("an environment's releases, newest first (* marks the current one)")
      .argument('<type>', 'env')
      .argument('<name>', 'environment')
      .option('-o, --output <format>', 'yaml | json'),
  ).action(
    runAction(async (type: string, name: string, flags: StoreFlags & { output?: string }) => {
      checkArgs(type, name, 'berth history env NAME [-o json|yaml]');
      const format = parseOutputFormat(flags.output);
      if (format === 'wide') throw new UsageError('history prints a table, yaml or json');
      return withClient(flags, async (client) => {
        const status = await statusOf(client, name);
        const data = { release: status.release, history: status.history ?? [] };
        process.stdout.write(format === 'table' ? formatHistory(status, new Date()) : formatData(data, format));
      });
    }),
  );
}
