import type { Command } from 'commander';
import { NotFoundError } from '../api/errors.js';
import { writeGcRelease } from '../store/gc.js';
import { formatTable } from './output.js';
import { listOrphans, orphanRows } from './orphans.js';
import { runAction } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

/**
 * `berth gc [ENV...] [--confirm]`: the deletions the controller holds (environments whose key
 * vanished without `berth delete`). Without --confirm it only lists what it would release and
 * exits 0, like a dry run; with it, the controller deletes what they owned within seconds.
 */
export function registerGc(program: Command): void {
  addStoreOptions(
    program
      .command('gc')
      .description('release the deletions held for environments whose key vanished without `berth delete`')
      .argument('[names...]', 'only these environments (default: every orphaned one)')
      .option('--confirm', 'release them: the controller deletes their services, node claims and routes'),
  ).action(
    runAction(async (names: string[], flags: StoreFlags & { confirm?: boolean }) =>
      withClient(flags, async (client) => {
        const all = await listOrphans(client, (m) => process.stderr.write(`warning: ${m}\n`));
        for (const n of names) if (!all.some((o) => o.name === n)) throw new NotFoundError('orphaned environment', n);
        const chosen = names.length > 0 ? all.filter((o) => names.includes(o.name)) : all;
        if (chosen.length === 0) {
          process.stderr.write('No held deletions.\n');
          return;
        }
        if (!flags.confirm) {
          const t = orphanRows(chosen, new Date());
          process.stdout.write(formatTable(t.headers, t.rows));
          process.stderr.write(`${chosen.length} held deletion${chosen.length > 1 ? 's' : ''}; run again with --confirm to delete what ${chosen.length > 1 ? 'they own' : 'it owns'}.\n`);
          return;
        }
        for (const o of chosen) {
          await writeGcRelease(client, o.name, new Date());
          process.stdout.write(`environment/${o.name} released\n`);
        }
      }),
    ),
  );
}
