import type { Command } from 'commander';
import { pino } from 'pino';
import { parseDuration } from '../api/duration.js';
import { metrics } from '../metrics/registry.js';
import { ControllerProcess } from '../controller/controller-process.js';
import { createClient, storeConfig } from '../store/client.js';
import { routesPrefixFrom } from '../store/routes.js';
import { DockerodeSwarm } from '../swarm/dockerode-swarm.js';
import { loadRegistryAuths } from '../swarm/registry-auth.js';
import { runAction, UsageError } from './run.js';
import { handleShutdownSignals } from './signals.js';
import { addStoreAndRoutesOptions, type StoreFlags } from './store-options.js';

interface ControllerFlags extends StoreFlags {
  metricsAddr: string;
  routesPrefix?: string;
  resync: string;
  fullResync: string;
  workers: string;
  reconcileTimeout: string;
  dockerTimeout: string;
  stallTimeout: string;
  drainTimeout: string;
  proxyWait: string;
}

export function registerControllerCommand(program: Command): void {
  addStoreAndRoutesOptions(
    program
      .command('controller')
      .description('Run the reconciler: make the Swarm match the Environments in etcd (long-running)')
      .option('--metrics-addr <addr>', 'listen address for /metrics, /healthz, /readyz', ':9464')
      .option('--resync <duration>', 'how often the Swarm is listed again; environments whose Swarm objects changed are reconciled', '30s')
      .option('--full-resync <duration>', 'how often every environment and group is reconciled, changed or not', '10m')
      .option('--workers <n>', 'concurrent reconciles', '2')
      .option('--reconcile-timeout <duration>', 'deadline of one reconcile; one that runs longer is retried with backoff', '2m')
      .option('--docker-timeout <duration>', 'deadline of one Docker API call, retries included', '10s')
      .option('--stall-timeout <duration>', '/healthz fails when the controller has had work this long without one reconcile succeeding', '3m')
      .option('--drain-timeout <duration>', 'on SIGTERM, running reconciles get this long to finish before they are abandoned', '30s')
      .option('--proxy-wait <duration>', 'how long a registered berth proxy that has not applied a cutover holds the old colour\'s drain (then ProxyLagging)', '5m'),
  ).action(runAction(async (flags: ControllerFlags) => runController(flags)));
}

async function runController(flags: ControllerFlags): Promise<number> {
  const resyncMs = durationFlag('--resync', flags.resync);
  const fullResyncMs = durationFlag('--full-resync', flags.fullResync);
  const reconcileTimeoutMs = durationFlag('--reconcile-timeout', flags.reconcileTimeout);
  const dockerTimeoutMs = durationFlag('--docker-timeout', flags.dockerTimeout);
  const stallTimeoutMs = durationFlag('--stall-timeout', flags.stallTimeout);
  const drainTimeoutMs = durationFlag('--drain-timeout', flags.drainTimeout);
  for (const [flag, ms] of [['--reconcile-timeout', reconcileTimeoutMs], ['--docker-timeout', dockerTimeoutMs], ['--stall-timeout', stallTimeoutMs]] as const) {
    if (ms <= 0) throw new UsageError(`${flag} must be longer than 0`);
  }
  const proxyWaitMs = durationFlag('--proxy-wait', flags.proxyWait);
  const workers = Number(flags.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new UsageError('--workers must be a whole number from 1 to 64');

  const log = pino({ name: 'berth-controller' });
  const config = storeConfig(flags);
  const etcd = createClient(config);
  const m = metrics();
  // DOCKER_HOST (unix:///path.sock or tcp://), DOCKER_TLS_VERIFY and DOCKER_CERT_PATH are read by
  // docker-modem, as the docker CLI reads them.
  const swarm = new DockerodeSwarm({
    onApiError: (operation) => m.dockerApiErrors.inc({ operation }),
    onApiRequest: (operation) => m.dockerApiRequests.inc({ operation }),
    onApiTimeout: (operation) => m.dockerApiTimeouts.inc({ operation }),
    timeoutMs: dockerTimeoutMs,
    registryAuths: loadRegistryAuths(),
  });

  let fatal: unknown;
  const shutdown = handleShutdownSignals(log);
  const controller = new ControllerProcess({
    etcd,
    swarm,
    routesPrefix: routesPrefixFrom(flags),
    metrics: m,
    log,
    metricsAddr: flags.metricsAddr,
    resyncMs,
    fullResyncMs,
    workers,
    reconcileTimeoutMs,
    stallTimeoutMs,
    drainTimeoutMs,
    proxyWaitMs,
    onFatal: (err) => {
      fatal = err;
      shutdown.trigger();
    },
  });

  // A standby stopped by a signal rejects start() ("stopped before elected"): not a failure.
  const starting = controller.start().catch((err: unknown) => {
    if (!shutdown.bySignal) fatal ??= err;
    shutdown.trigger();
  });
  try {
    await shutdown.requested;
  } finally {
    await controller.stop().catch(() => undefined);
    etcd.close();
    shutdown.dispose();
    // Requests abandoned on a hung dockerd may still hold sockets: they must not keep a stopped
    // controller alive past its drain.
    setTimeout(() => process.exit(), 2_000).unref();
  }
  await starting;
  if (fatal) {
    log.error({ err: (fatal as Error).message }, 'controller failed');
    return 1;
  }
  return 0;
}

function durationFlag(flag: string, value: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new UsageError(`${flag}: invalid duration "${value}"`);
  }
}
