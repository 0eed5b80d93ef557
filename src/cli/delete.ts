import type { Command } from 'commander';
import { NotFoundError } from '../api/errors.js';
import { ResourceStore } from '../store/resources.js';
import { kindFromArg, kindLabel } from './resource-types.js';
import { runAction } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

export function registerDelete(program: Command): void {
  addStoreOptions(
    program
      .command('delete')
      .description('delete an environment or a group; the controller removes what it owned')
      .argument('<type>', 'env | group')
      .argument('<name>')
      .option('--force', 'delete a group even while environments still use it'),
  ).action(
    runAction(async (type: string, name: string, flags: StoreFlags & { force?: boolean }) => {
      const kind = kindFromArg(type);
      return withClient(flags, async (client) => {
        // An environment is marked; the controller removes what it owned, then its keys. A group
        // owns nothing in Swarm: its key goes at once (its environments then wait, Degraded).
        const store = new ResourceStore(client);
        const existed = kind === 'Environment' ? await store.markDeleted(name) : await store.delete(kind, name, { force: flags.force ?? false });
        if (!existed) throw new NotFoundError(kindLabel(kind), name);
        process.stdout.write(`${kindLabel(kind)}/${name} deleted\n`);
      });
    }),
  );
}
