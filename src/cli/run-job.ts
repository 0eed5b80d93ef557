import type { Command } from 'commander';
import { NotFoundError } from '../api/errors.js';
import type { JobRunRequest } from '../api/job.js';
import { resourceName, serviceName } from '../api/primitives.js';
import type { EtcdClient } from '../store/client.js';
import { writeJobRequest } from '../store/job-requests.js';
import { ResourceStore } from '../store/resources.js';
import { runAction, UsageError } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

/**
 * `berth run env NAME JOB`: records a request (src/store/job-requests.ts) that the leading
 * controller takes at once: it starts one run of the job, whatever its schedule and concurrency.
 */
export async function requestJobRun(client: EtcdClient, env: string, job: string, now = new Date()): Promise<JobRunRequest> {
  const resource = await new ResourceStore(client).get('Environment', env);
  if (!resource) throw new NotFoundError('environment', env);
  if (!resource.spec.jobs[job]) throw new NotFoundError(`job in environment ${env}`, job);
  const req: JobRunRequest = { requestedAt: now.toISOString() };
  await writeJobRequest(client, env, job, req);
  return req;
}

export function registerRunJobCommand(program: Command): void {
  addStoreOptions(
    program
      .command('run')
      .description("start a run of an environment's job now")
      .argument('<type>', 'env')
      .argument('<name>', 'environment')
      .argument('<job>', 'job in the environment'),
  ).action(
    runAction(async (type: string, name: string, job: string, flags: StoreFlags) => {
      if (type !== 'env' && type !== 'environment' && type !== 'envs') throw new UsageError('usage: berth run env NAME JOB');
      if (!resourceName.safeParse(name).success) throw new UsageError(`invalid environment name "${name}"`);
      if (!serviceName.safeParse(job).success) throw new UsageError(`invalid job name "${job}"`);
      return withClient(flags, async (client) => {
        await requestJobRun(client, name, job);
        process.stdout.write(`run of ${name}/${job} requested; \`berth describe env ${name}\` shows it\n`);
      });
    }),
  );
}
