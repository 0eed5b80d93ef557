import { hostname } from 'node:os';
import type { Command } from 'commander';
import { pino } from 'pino';
import { parseDuration } from '../api/duration.js';
import { startMetricsServer } from '../metrics/server.js';
import { DEFAULT_LISTEN, isValidListen } from '../routing/nginx-render.js';
import { NginxProxy } from '../routing/proxy.js';
import { createClient, storeConfig } from '../store/client.js';
import { ProxyRegistration } from '../store/proxies.js';
import { RouteStore, routesPrefixFrom } from '../store/routes.js';
import { runAction, UsageError } from './run.js';
import { handleShutdownSignals } from './signals.js';
import { addStoreAndRoutesOptions, type StoreFlags } from './store-options.js';

export interface ProxyFlags extends StoreFlags {
  nginxConf?: string;
  listen?: string;
  checkCmd?: string;
  reloadCmd?: string;
  routesPrefix?: string;
  coalesce: string;
  metricsAddr: string;
  nginxPidFile?: string;
  proxyId?: string;
}

/**
 * `berth proxy`: flags over environment (BERTH_NGINX_CONF, BERTH_NGINX_LISTEN,
 * BERTH_NGINX_CHECK_CMD, BERTH_NGINX_RELOAD_CMD, BERTH_ROUTES_PREFIX, BERTH_ETCD_ENDPOINTS,
 * BERTH_PREFIX) over defaults, so after `eval "$(berth lab env)"` a bare `berth proxy` drives
 * the lab's nginx.
 */
export function registerProxyCommand(program: Command): void {
  addStoreAndRoutesOptions(
    program
      .command('proxy')
    .description('Watch the route keys in etcd and keep an nginx upstreams file in step (the built-in confd)')
    .option('--nginx-conf <path>', 'the nginx file to write, included inside http {} by the main config (env BERTH_NGINX_CONF)')
    .option('--listen <addr>', `listen address of each route's server block (env BERTH_NGINX_LISTEN, default ${DEFAULT_LISTEN})`)
    .option('--check-cmd <cmd>', 'checks the whole nginx config (env BERTH_NGINX_CHECK_CMD, default "nginx -t")')
    .option('--reload-cmd <cmd>', 'reloads nginx gracefully when no --nginx-pid-file is given (env BERTH_NGINX_RELOAD_CMD, default "nginx -s reload")')
    .option('--nginx-pid-file <path>', 'nginx pid file: when set, the reload is a SIGHUP to the master (instead of --reload-cmd) and counts as done once the old workers stopped accepting (env BERTH_NGINX_PID_FILE)')
    .option('--coalesce <duration>', 'the first change applies at once; changes within this window of it go together into the next reload', '300ms')
    .option('--proxy-id <id>', 'name of this proxy\'s registration <prefix>/proxies/<id>, where it acknowledges what nginx serves (env BERTH_PROXY_ID, default the host name)')
    .option('--metrics-addr <addr>', 'listen address for /metrics, /healthz, /readyz ("" to disable)', '127.0.0.1:9465'),
  ).action(runAction(async (flags: ProxyFlags) => runProxy(flags)));
}

export function resolveProxyConfig(flags: ProxyFlags, env: NodeJS.ProcessEnv = process.env) {
  const confPath = flags.nginxConf ?? env.BERTH_NGINX_CONF;
  if (!confPath) throw new UsageError('--nginx-conf is required (or set BERTH_NGINX_CONF, e.g. eval "$(berth lab env)")');
  const listen = flags.listen ?? env.BERTH_NGINX_LISTEN ?? DEFAULT_LISTEN;
  if (!isValidListen(listen)) throw new UsageError(`--listen: invalid address "${listen}"`);
  let coalesceMs: number;
  try {
    coalesceMs = parseDuration(flags.coalesce);
  } catch {
    throw new UsageError(`--coalesce: invalid duration "${flags.coalesce}"`);
  }
  const store = storeConfig(flags, env);
  return {
    confPath,
    listen,
    coalesceMs,
    checkCmd: flags.checkCmd ?? env.BERTH_NGINX_CHECK_CMD ?? 'nginx -t',
    reloadCmd: flags.reloadCmd ?? env.BERTH_NGINX_RELOAD_CMD ?? 'nginx -s reload',
    ...(flags.nginxPidFile ?? env.BERTH_NGINX_PID_FILE ? { pidFile: flags.nginxPidFile ?? env.BERTH_NGINX_PID_FILE } : {}),
    store,
    routesPrefix: routesPrefixFrom(flags, env),
    proxyId: proxyIdFrom(flags.proxyId ?? env.BERTH_PROXY_ID ?? hostname()),
  };
}

async function runProxy(flags: ProxyFlags): Promise<number> {
  const cfg = resolveProxyConfig(flags);
  const log = pino({ name: 'berth-proxy' });
  const etcd = createClient(cfg.store);
  const routes = new RouteStore(etcd, cfg.routesPrefix);
  const registration = new ProxyRegistration(etcd, cfg.proxyId, log);
  const proxy = new NginxProxy(routes, {
    ...cfg,
    log,
    onApplied: ({ revision, rejected }) => {
      proxy.metrics.appliedRevision.set(Number(revision));
      void registration.ack(revision, rejected);
    },
  });
  const server = flags.metricsAddr
    ? await startMetricsServer(flags.metricsAddr, proxy.metrics.registry, { ready: () => proxy.ready })
    : undefined;

  const shutdown = handleShutdownSignals(log, 'stopping');
  log.info({ proxy: registration.key, file: cfg.confPath, routesPrefix: cfg.routesPrefix, endpoints: cfg.store.endpoints, listen: cfg.listen }, 'berth proxy started');
  try {
    proxy.start();
    await shutdown.requested;
  } finally {
    await proxy.stop();
    await registration.close();
    etcd.close();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    shutdown.dispose();
  }
  return 0;
}

/** A registration key segment: the host name (or --proxy-id) with anything outside [A-Za-z0-9._-] made '-'. */
function proxyIdFrom(raw: string): string {
  const id = raw.trim().replace(/[^A-Za-z0-9._-]/g, '-');
  if (id === '') throw new UsageError('--proxy-id must not be empty');
  return id;
}
