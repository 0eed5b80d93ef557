import type { Command } from 'commander';
import { pino } from 'pino';
import type { ContainerEventsScope } from '../sim/cluster.js';
import { startSimServer } from '../sim/server.js';
import { runAction, UsageError } from './run.js';
import { handleShutdownSignals } from './signals.js';

export interface SimFlags {
  socket: string;
  nodes: string;
  nodeLabels?: string;
  latencyMs: string;
  taskStartMs: string;
  taskStopMs: string;
  taskHistory: string;
  containerEvents: string;
}

const CONTAINER_EVENTS: readonly ContainerEventsScope[] = ['manager', 'all', 'none'];

/** `berth sim`: a simulated Swarm manager on a unix socket, for scale runs (docs/sim.md). */
export function registerSimCommand(program: Command): void {
  program
    .command('sim')
    .description('Serve a simulated Swarm (Engine API subset: nodes, services, tasks, events) on a unix socket, for scale tests')
    .requiredOption('--socket <path>', 'unix socket to listen on (use DOCKER_HOST=unix://PATH)')
    .option('--nodes <n>', 'number of nodes, named sim-1 … sim-N (sim-1 is the manager)', '3')
    .option('--node-labels <k=v,...>', 'labels every node carries, besides zone=a|b|c round robin')
    .option('--latency-ms <ms>', 'delay added to every API response', '3')
    .option('--task-start-ms <ms>', 'time from a task being assigned to running', '100')
    .option('--task-stop-ms <ms>', 'time from a task being told to stop to shut down', '50')
    .option('--task-history <n>', 'tasks kept per slot, the current one included (Swarm: 5)', '5')
    .option('--container-events <scope>', `container events streamed: ${CONTAINER_EVENTS.join('|')} (manager: only sim-1's, as a real manager's stream)`, 'manager')
    .action(runAction(async (flags: SimFlags) => runSim(flags)));
}

export function parseSimFlags(flags: SimFlags) {
  const int = (name: string, raw: string, min: number) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name}: expected an integer ≥ ${min}, got "${raw}"`);
    return n;
  };
  const nodeLabels: Record<string, string> = {};
  for (const pair of (flags.nodeLabels ?? '').split(',').filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--node-labels: expected k=v, got "${pair}"`);
    nodeLabels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (!CONTAINER_EVENTS.includes(flags.containerEvents as ContainerEventsScope)) {
    throw new UsageError(`--container-events: expected one of ${CONTAINER_EVENTS.join(', ')}`);
  }
  return {
    socketPath: flags.socket,
    nodes: int('nodes', flags.nodes, 1),
    nodeLabels,
    latencyMs: int('latency-ms', flags.latencyMs, 0),
    taskStartMs: int('task-start-ms', flags.taskStartMs, 0),
    taskStopMs: int('task-stop-ms', flags.taskStopMs, 0),
    taskHistory: int('task-history', flags.taskHistory, 1),
    containerEvents: flags.containerEvents as ContainerEventsScope,
  };
}

async function runSim(flags: SimFlags): Promise<number> {
  const opts = parseSimFlags(flags);
  const log = pino({ name: 'berth-sim' });
  const sim = await startSimServer(opts);
  const shutdown = handleShutdownSignals(log, 'stopping');
  log.info({ socket: opts.socketPath, nodes: opts.nodes, latencyMs: opts.latencyMs }, `berth sim listening: DOCKER_HOST=unix://${opts.socketPath}`);
  try {
    await shutdown.requested;
  } finally {
    await sim.close();
    shutdown.dispose();
  }
  return 0;
}
