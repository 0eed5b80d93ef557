/** `berth lab up|env|status|down|stop-node|start-node`: a real multi-node Swarm on this machine. */
import type { Command } from 'commander';
import { runAction, UsageError, EXIT_FAILURE } from './run.js';
import { formatEnv, labDown, labStatus, labUp, readLabEnv, startNode, stopNode, LabUsageError } from '../lab/index.js';

const err = (s: string) => process.stderr.write(s + '\n');

function intArg(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} must be a positive integer, got "${v}"`);
  return Number(v);
}

function usage<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    throw e instanceof LabUsageError ? new UsageError(e.message) : e;
  });
}

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('a real multi-node Swarm, etcd, registry and nginx on this one Linux machine (state in $BERTH_LAB_DIR, default /var/lib/berth-lab)');

  lab
    .command('up')
    .description('bring the lab up (idempotent: repairs what is not running)')
    .option('--nodes <n>', 'number of Swarm nodes (default 3)')
    .option('--managers <m>', 'nodes 1..M are managers (default 1)')
    .action(
      runAction(async (o: { nodes?: string; managers?: string }) => {
        const report = await usage(
          labUp({ nodes: intArg('--nodes', o.nodes), managers: intArg('--managers', o.managers), log: (s) => err(`lab: ${s}`) }),
        );
        err(report.changes.length ? `lab up in ${report.seconds.toFixed(1)} s: ${report.changes.join(', ')}` : `lab already up; nothing to do (${report.seconds.toFixed(1)} s)`);
        err('use it with: eval "$(berth lab env)"');
      }),
    );

  lab
    .command('env')
    .description('print export lines for the running lab')
    .action(
      runAction(async () => {
        process.stdout.write(formatEnv(readLabEnv()));
      }),
    );

  lab
    .command('status')
    .description('show each part of the lab and whether it runs (exit 1 when something does not)')
    .action(
      runAction(async () => {
        const st = await labStatus();
        if (!st.up) {
          process.stdout.write('lab is not up\n');
          return EXIT_FAILURE;
        }
        const w = Math.max(...st.rows.map((r) => r.part.length));
        for (const r of st.rows) process.stdout.write(`${r.part.padEnd(w)}  ${r.running ? 'running' : 'DOWN   '}  ${r.detail}\n`);
        return st.rows.every((r) => r.running) ? 0 : EXIT_FAILURE;
      }),
    );

  lab
    .command('down')
    .description('stop and remove everything the lab recorded, then its state dir (idempotent)')
    .action(
      runAction(async () => {
        const report = await labDown({ log: (s) => err(`lab: ${s}`) });
        err(report.removed.length ? `lab down: removed ${report.removed.length} parts` : 'lab was not up; nothing to do');
      }),
    );

  lab
    .command('stop-node')
    .argument('<index>', 'node number, 1-based (lab-N)')
    .description("stop one node's dockerd (keeps its namespace and data)")
    .action(runAction(async (i: string) => usage(stopNode(intArg('index', i)!))));

  lab
    .command('start-node')
    .argument('<index>', 'node number, 1-based (lab-N)')
    .description("start one node's dockerd again")
    .action(runAction(async (i: string) => usage(startNode(intArg('index', i)!))));
}
