import type { Command } from 'commander';
import { formatAge, NotFoundError, type Environment, type EnvironmentGroup, type EnvironmentStatus, type GroupStatus, type Kind } from '../api/index.js';
import { ResourceStore } from '../store/resources.js';
import { StatusStore } from '../store/status.js';
import { formatData, formatTable, parseOutputFormat } from './output.js';
import { listOrphans, orphanRows } from './orphans.js';
import { UsageError } from './run.js';
import { kindFromArg, kindLabel } from './resource-types.js';
import { runAction } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

const age = (ts: string | undefined, now: Date) => (ts ? formatAge(now.getTime() - Date.parse(ts)) : '<unknown>');

/** Services whose running replicas reach the desired count, over the services in the spec. */
export function readyCount(env: Environment, status: EnvironmentStatus | undefined): string {
  const names = Object.keys(env.spec.services);
  const ready = names.filter((n) => {
    const s = status?.services[n];
    return s !== undefined && s.runningReplicas >= s.desiredReplicas;
  }).length;
  return `${ready}/${names.length}`;
}

export function envRows(envs: Environment[], statuses: Map<string, EnvironmentStatus>, wide: boolean, now: Date): { headers: string[]; rows: string[][] } {
  const headers = ['NAME', 'GROUP', 'NODES', 'PHASE', 'READY', 'AGE', ...(wide ? ['TTL', 'GENERATION', 'SERVICES'] : [])];
  const rows = envs.map((e) => {
    const s = statuses.get(e.metadata.name);
    const row = [e.metadata.name, e.spec.group, `${s?.nodes.length ?? 0}/${e.spec.nodes}`, s?.phase ?? '-', readyCount(e, s), age(e.metadata.creationTimestamp, now)];
    if (wide) {
      const services = Object.entries(e.spec.services).map(([n, svc]) => `${n}=${svc.image}`).join(',') || '<none>';
      row.push(e.spec.ttl ?? '<none>', `${s?.observedGeneration ?? '-'}/${e.metadata.generation ?? 1}`, services);
    }
    return row;
  });
  return { headers, rows };
}

export function groupRows(groups: EnvironmentGroup[], statuses: Map<string, GroupStatus>, wide: boolean, now: Date): { headers: string[]; rows: string[][] } {
  const headers = ['NAME', 'SELECTOR', 'SPARE', 'POOL', 'CLAIMED', 'AGE', ...(wide ? ['PHASE', 'ENVIRONMENTS'] : [])];
  const rows = groups.map((g) => {
    const s = statuses.get(g.metadata.name);
    const selector = Object.entries(g.spec.nodeSelector).map(([k, v]) => `${k}=${v}`).join(',');
    const claimed = s ? String(Object.values(s.claims).reduce((a, b) => a + b, 0)) : '-';
    const row = [g.metadata.name, selector, String(g.spec.spare), s ? String(s.poolNodes) : '-', claimed, age(g.metadata.creationTimestamp, now)];
    if (wide) row.push(s?.phase ?? '-', s ? Object.keys(s.claims).sort().join(',') || '<none>' : '-');
    return row;
  });
  return { headers, rows };
}

interface GetFlags extends StoreFlags {
  output?: string;
  orphaned?: boolean;
}

export function registerGet(program: Command): void {
  addStoreOptions(
    program
      .command('get')
      .description('list environment groups or environments (kubectl-style)')
      .argument('<type>', 'groups | envs (also group, env, environment, environments)')
      .argument('[name]', 'only this one')
      .option('-o, --output <format>', 'yaml | json | wide')
      .option('--orphaned', 'environments whose key vanished without `berth delete`: what is held, since when, why'),
  ).action(
    runAction(async (type: string, name: string | undefined, flags: GetFlags) => {
      const kind: Kind = kindFromArg(type);
      const format = parseOutputFormat(flags.output);
      if (flags.orphaned && (kind !== 'Environment' || name)) throw new UsageError('--orphaned lists environments: berth get envs --orphaned');
      return withClient(flags, async (client) => {
        if (flags.orphaned) {
          const orphans = await listOrphans(client, (m) => process.stderr.write(`warning: ${m}\n`));
          if (format === 'yaml' || format === 'json') process.stdout.write(formatData({ apiVersion: 'berth.dev/v1alpha1', kind: 'List', items: orphans }, format));
          else if (orphans.length === 0) process.stderr.write('No orphaned environments.\n');
          else {
            const table = orphanRows(orphans, new Date());
            process.stdout.write(formatTable(table.headers, table.rows));
          }
          return;
        }
        const store = new ResourceStore(client);
        const statusStore = new StatusStore(client);
        let items;
        if (name) {
          const one = await store.get(kind, name);
          if (!one) throw new NotFoundError(kindLabel(kind), name);
          items = [one];
        } else items = await store.list(kind);
        const statuses = await statusStore.listStatuses(kind, (err) => process.stderr.write(`warning: ${err.message}\n`));
        if (format === 'yaml' || format === 'json') {
          const withStatus = items.map((r) => ({ ...r, status: statuses.get(r.metadata.name) ?? null }));
          const doc = name ? withStatus[0] : { apiVersion: 'berth.dev/v1alpha1', kind: 'List', items: withStatus };
          process.stdout.write(formatData(doc, format));
          return;
        }
        if (items.length === 0) {
          process.stderr.write(`No ${kind === 'Environment' ? 'environments' : 'environment groups'} found.\n`);
          return;
        }
        const now = new Date();
        const wide = format === 'wide';
        const table =
          kind === 'Environment'
            ? envRows(items as Environment[], statuses as Map<string, EnvironmentStatus>, wide, now)
            : groupRows(items as EnvironmentGroup[], statuses as Map<string, GroupStatus>, wide, now);
        process.stdout.write(formatTable(table.headers, table.rows));
      });
    }),
  );
}
