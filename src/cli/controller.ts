import fs from 'node:fs';
import type { Command } from 'commander';
import { pino, type Logger } from 'pino';
import { parseDuration } from '../api/duration.js';
import { metrics } from '../metrics/registry.js';
import { ControllerProcess } from '../controller/controller-process.js';
import { createClient, storeConfig, type EtcdClient } from '../store/client.js';
import { ensureInstallation } from '../store/installation.js';
import { routesPrefixFrom } from '../store/routes.js';
import { DockerodeSwarm } from '../swarm/dockerode-swarm.js';
import { runAction, UsageError } from './run.js';
import { handleShutdownSignals } from './signals.js';
import { addRegistryOptions, registryClient, registryCredentials, type RegistryFlags } from './registry-options.js';
import { addStoreAndRoutesOptions, type StoreFlags } from './store-options.js';

interface ControllerFlags extends RegistryFlags, StoreFlags {
  metricsAddr: string;
  routesPrefix?: string;
  resync: string;
  relist: string;
  fullResync: string;
  workers: string;
  reconcileTimeout: string;
  dockerTimeout: string;
  stallTimeout: string;
  drainTimeout: string;
  proxyWait: string;
  orphanGrace: string;
  registryNotifications?: boolean;
  registryNotificationsTokenFile?: string;
}

export function registerControllerCommand(program: Command): void {
  addRegistryOptions(addStoreAndRoutesOptions(
    program
      .command('controller')
      .description('Run the reconciler: make the Swarm match the Environments in etcd (long-running)')
      .option('--metrics-addr <addr>', 'listen address for /metrics, /healthz, /readyz', '127.0.0.1:9464')
      .option('--resync <duration>', 'how often the running tasks are listed again (a task on a worker raises no event); environments whose tasks changed are reconciled', '30s')
      .option('--relist <duration>', 'how often the whole Swarm (nodes, services, tasks) is listed again besides after every events reconnect (±10 %)', '10m')
      .option('--full-resync <duration>', 'how often every environment and group is reconciled, changed or not', '10m')
      .option('--workers <n>', 'concurrent reconciles', '2')
      .option('--reconcile-timeout <duration>', 'deadline of one reconcile; one that runs longer is retried with backoff', '2m')
      .option('--docker-timeout <duration>', 'deadline of one Docker API call, retries included', '10s')
      .option('--stall-timeout <duration>', '/healthz fails when the controller has had work this long without one reconcile succeeding', '3m')
      .option('--drain-timeout <duration>', 'on SIGTERM, running reconciles get this long to finish before they are abandoned', '30s')
      .option('--proxy-wait <duration>', 'how long a registered berth proxy that has not applied a cutover holds the old colour\'s drain (then ProxyLagging)', '5m')
      .option('--orphan-grace <duration>', 'how long the objects of an environment whose key vanished without `berth delete` are kept', '60s')
      .option('--registry-notifications', 'accept registry notifications (POST /registry/notifications on --metrics-addr): a pushed tag that a service tracks is resolved at once (env BERTH_REGISTRY_NOTIFICATIONS=true)')
      .option('--registry-notifications-token-file <file>', 'require `Authorization: Bearer <the file\'s contents>` on notifications; implies --registry-notifications (env BERTH_REGISTRY_NOTIFICATIONS_TOKEN_FILE)'),
  )).action(runAction(async (flags: ControllerFlags) => runController(flags)));
}

async function runController(flags: ControllerFlags): Promise<number> {
  const resyncMs = durationFlag('--resync', flags.resync);
  const fullResyncMs = durationFlag('--full-resync', flags.fullResync);
  const relistMs = durationFlag('--relist', flags.relist);
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
  const orphanGraceMs = durationFlag('--orphan-grace', flags.orphanGrace);

  const registryNotifications = notificationSettings(flags);
  const credentials = registryCredentials(flags);
  const images = registryClient(flags, credentials);
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
    registryCredentials: credentials,
  });

  let fatal: unknown;
  const shutdown = handleShutdownSignals(log);
  const installation = await installationId(etcd, log, shutdown.requested);
  if (installation === undefined) {
    etcd.close();
    shutdown.dispose();
    return 0;
  }
  const controller = new ControllerProcess({
    etcd,
    swarm,
    routesPrefix: routesPrefixFrom(flags),
    metrics: m,
    log,
    metricsAddr: flags.metricsAddr,
    resyncMs,
    relistMs,
    fullResyncMs,
    workers,
    reconcileTimeoutMs,
    stallTimeoutMs,
    drainTimeoutMs,
    proxyWaitMs,
    installation,
    orphanGraceMs,
    ...(images ? { images } : {}),
    ...(registryNotifications ? { registryNotifications } : {}),
    swarmObjects: swarm,
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

/**
 * Reads (or, first on the prefix, creates) the installation id, retrying while etcd cannot be
 * reached; undefined when stopped first. Nothing is touched in Swarm without it.
 */
async function installationId(etcd: EtcdClient, log: Logger, stop: Promise<unknown>): Promise<string | undefined> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  for (let attempt = 0; !stopped; attempt++) {
    try {
      const { id, created } = await ensureInstallation(etcd);
      log.info({ installation: id, prefix: etcd.prefix }, created ? 'installation id created: first controller on this prefix' : 'installation id read');
      return id;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'reading the installation id failed; retrying');
    }
    await Promise.race([stop, new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 10_000)))]);
  }
  return undefined;
}

/** `--registry-notifications[-token-file]`, flags over `BERTH_REGISTRY_NOTIFICATIONS[_TOKEN_FILE]`; undefined: off. */
export function notificationSettings(flags: Pick<ControllerFlags, 'registryNotifications' | 'registryNotificationsTokenFile'>, env: NodeJS.ProcessEnv = process.env): { token?: string } | undefined {
  const file = flags.registryNotificationsTokenFile ?? env.BERTH_REGISTRY_NOTIFICATIONS_TOKEN_FILE;
  if (file) {
    let token: string;
    try {
      token = fs.readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`--registry-notifications-token-file: ${(err as Error).message}`);
    }
    if (!token) throw new UsageError(`--registry-notifications-token-file: ${file} is empty`);
    return { token };
  }
  const on = flags.registryNotifications ?? /^(1|true|yes)$/i.test(env.BERTH_REGISTRY_NOTIFICATIONS ?? '');
  return on ? {} : undefined;
}

function durationFlag(flag: string, value: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new UsageError(`${flag}: invalid duration "${value}"`);
  }
}
