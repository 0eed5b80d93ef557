import type { Command } from 'commander';
import { NotFoundError } from '../api/errors.js';
import { ResourceStore } from '../store/resources.js';
import { kindFromArg } from './resource-types.js';
import { runAction, UsageError } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

export function registerScale(program: Command): void {
  addStoreOptions(
    program
      .command('scale')
      .description("resize an environment's node claim")
      .argument('<type>', 'env')
      .argument('<name>')
      .requiredOption('--nodes <n>', 'nodes to claim from the group'),
  ).action(
    runAction(async (type: string, name: string, flags: StoreFlags & { nodes: string }) => {
      if (kindFromArg(type) !== 'Environment') throw new UsageError('scale supports envs only: berth scale env NAME --nodes N');
      if (!/^\d+$/.test(flags.nodes)) throw new UsageError(`--nodes must be a whole number, got "${flags.nodes}"`);
      const nodes = Number(flags.nodes);
      return withClient(flags, async (client) => {
        const out = await new ResourceStore(client).update('Environment', name, (env) => ({ ...env, spec: { ...env.spec, nodes } }));
        if (!out) throw new NotFoundError('environment', name);
        process.stdout.write(`environment/${name} ${out.result === 'unchanged' ? 'unchanged' : 'scaled'}\n`);
      });
    }),
  );
}
