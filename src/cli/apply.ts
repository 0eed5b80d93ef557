import type { Command } from 'commander';
import { InvalidInputError } from '../api/errors.js';
import type { EtcdClient } from '../store/client.js';
import { ResourceStore } from '../store/resources.js';
import { checkGroupReferences, expandPaths, InvalidInputErrors, parseDocuments, readInput, type LoadedResource } from './load.js';
import { kindLabel } from './resource-types.js';
import { EXIT_INVALID, EXIT_OK, runAction, UsageError } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

interface ApplyFlags extends StoreFlags {
  filename: string[];
  dryRun?: boolean;
  watch?: boolean;
}

/**
 * Applies files: every file is validated as a whole (all documents, then `spec.group`
 * references against this batch and etcd) before anything of it is stored; valid files are
 * stored even when another file is invalid, and the exit code is then 2. Groups are stored
 * before environments.
 */
export async function applyFiles(
  client: EtcdClient,
  files: string[],
  opts: { dryRun?: boolean; out?: (line: string) => void; err?: (line: string) => void } = {},
): Promise<number> {
  const out = opts.out ?? ((l) => process.stdout.write(`${l}\n`));
  const err = opts.err ?? ((l) => process.stderr.write(`${l}\n`));
  const store = new ResourceStore(client);
  const perFile: LoadedResource[][] = [];
  const errors: InvalidInputError[] = [];
  for (const file of files) {
    try {
      perFile.push(parseDocuments(file, await readInput(file)));
    } catch (e) {
      if (e instanceof InvalidInputErrors) errors.push(...e.errors);
      else if (e instanceof InvalidInputError) errors.push(e);
      else errors.push(new InvalidInputError([{ path: '', message: (e as Error).message }], { file, document: 0 }));
    }
  }
  const batch = perFile.flat();
  const needsStored = batch.some((l) => l.resource.kind === 'Environment');
  const stored = needsStored ? new Set((await store.list('EnvironmentGroup')).map((g) => g.metadata.name)) : new Set<string>();
  const refErrors = checkGroupReferences(batch, stored);
  errors.push(...refErrors);
  const badFiles = new Set(refErrors.map((e) => e.location?.file));
  const toStore = perFile.filter((docs) => !docs.some((d) => badFiles.has(d.file))).flat();
  toStore.sort((a, b) => (a.resource.kind === b.resource.kind ? 0 : a.resource.kind === 'EnvironmentGroup' ? -1 : 1));
  // Groups before environments, each kind in a few transactions (ResourceStore.applyMany):
  // applying a thousand environments one round trip after another took longer than the
  // controller needed to run them. Documents naming the same resource go in file order, so the
  // last one wins. Results are printed in file order.
  const results = new Map<LoadedResource, string>();
  for (const kind of ['EnvironmentGroup', 'Environment'] as const) {
    const docs = toStore.filter((l) => l.resource.kind === kind);
    const outcomes = await store.applyMany(docs.map((l) => l.resource), { dryRun: opts.dryRun ?? false });
    docs.forEach((l, i) => results.set(l, outcomes[i]!.result));
  }
  for (const l of toStore) out(`${kindLabel(l.resource.kind)}/${l.resource.metadata.name} ${results.get(l)}${opts.dryRun ? ' (dry run)' : ''}`);
  for (const e of errors) err(`error: ${e.message}`);
  return errors.length > 0 ? EXIT_INVALID : EXIT_OK;
}

export function registerApply(program: Command): void {
  addStoreOptions(
    program
      .command('apply')
      .description('validate resources and store them in etcd')
      .requiredOption('-f, --filename <path...>', 'a file, a directory of *.yaml/*.yml/*.json, or - for stdin')
      .option('--dry-run', 'validate and show what would change, store nothing')
      .option('--watch', 're-apply a file whenever it is saved; report errors and keep watching; Ctrl-C to stop'),
  ).action(
    runAction(async (flags: ApplyFlags) => {
      if (flags.watch && flags.filename.includes('-')) throw new UsageError('--watch cannot watch standard input');
      const files = await expandPaths(flags.filename);
      if (files.length === 0) throw new UsageError(`no *.yaml, *.yml or *.json files in ${flags.filename.join(', ')}`);
      if (!flags.watch) return withClient(flags, (client) => applyFiles(client, files, { dryRun: flags.dryRun ?? false }));
      return withClient(flags, (client) => watchAndApply(client, flags, files));
    }),
  );
}

async function watchAndApply(client: EtcdClient, flags: ApplyFlags, files: string[]): Promise<number> {
  const applyQuietly = async (f: string[]) => {
    try {
      await applyFiles(client, f, { dryRun: flags.dryRun ?? false });
    } catch (e) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
    }
  };
  await applyQuietly(files);
  const { watch } = await import('chokidar'); // only --watch needs it: every other apply is spared loading it
  const watcher = watch(flags.filename, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 200, pollInterval: 50 } });
  let chain = Promise.resolve();
  const onFile = (path: string) => {
    if (!/\.(ya?ml|json)$/i.test(path)) return;
    chain = chain.then(() => applyQuietly([path]));
  };
  watcher.on('add', onFile).on('change', onFile);
  process.stderr.write(`watching ${flags.filename.join(', ')} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await watcher.close();
  await chain;
  return EXIT_OK;
}

