import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { BerthMetrics } from '../metrics/registry.js';
import { startMetricsServer } from '../metrics/server.js';
import { StorePorts } from '../reconcile/store-ports.js';
import { realClock } from '../runtime/clock.js';
import { EtcdLeaderElection } from '../runtime/leader-etcd.js';
import { Manager } from '../runtime/manager.js';
import type { ImageResolver, ImageTagger } from '../reconcile/ports.js';
import type { EtcdClient } from '../store/client.js';
import { ProxyAckStore } from '../store/proxies.js';
import { RouteStore } from '../store/routes.js';
import { watchResources } from '../store/watch.js';
import type { SwarmApi, SwarmObjectLookup } from '../swarm/api.js';
import { SwarmCache } from '../swarm/cache.js';
import { FencedSwarm } from '../swarm/fenced-swarm.js';
import { berthController } from './berth-controller.js';
import { etcdJobRequestWatch, etcdReleaseRequestWatch } from './source-job-requests.js';
import { etcdRegistryPushWatch } from './source-registry-pushes.js';
import { NOTIFY_PATH, registryNotificationHandler } from '../registry/notify-endpoint.js';
import { writeRegistryPushes } from '../store/registry-pushes.js';
import { heapTrimmer } from './heap-trim.js';

export interface ControllerProcessOptions {
  etcd: EtcdClient;
  swarm: SwarmApi;
  routesPrefix: string;
  metrics: BerthMetrics;
  log: Logger;
  metricsAddr: string;
  /** `--resync`: how often the running tasks are listed again. */
  resyncMs: number;
  /** `--relist`: how often the whole Swarm is listed again (and after every events reconnect). */
  relistMs: number;
  fullResyncMs: number;
  workers: number;
  reconcileTimeoutMs?: number;
  stallTimeoutMs?: number;
  drainTimeoutMs?: number;
  /** Leader lease TTL, seconds. */
  leaseTtlSeconds?: number;
  /** `--proxy-wait` (default 5 min). */
  proxyWaitMs?: number;
  /** This installation's id (etcd `<prefix>/installation`), read or created before the process starts. */
  installation: string;
  orphanGraceMs?: number;
  /** Called when a runnable dies: the process should exit and restart. Losing leadership is not fatal. */
  /** The registry client that resolves tags to digests. */
  images?: ImageResolver & ImageTagger;
  /**
   * `--registry-notifications`: accept registry notifications on POST /registry/notifications of
   * the metrics server, with this bearer token when it is a string.
   */
  registryNotifications?: { token?: string };
  /** Finds the Swarm secrets and configs services name (the Docker adapter). */
  swarmObjects?: SwarmObjectLookup;
  onFatal: (err: unknown) => void;
}

/**
 * `berth controller`: a metrics server that always runs, and a manager that campaigns for
 * leadership over etcd and, while leader, runs berth's controller, the phase gauge and the heap
 * trim after bursts of work. Every write the controller makes is fenced by the manager's
 * current leadership: etcd writes
 * compare the leader key (a fenced client), Docker mutations need the lease held (FencedSwarm
 * under the cache, so no write path can skip it).
 */
export class ControllerProcess {
  private readonly manager: Manager;
  private server: Server | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly o: ControllerProcessOptions) {
    this.manager = new Manager({
      election: new EtcdLeaderElection(o.etcd, { log: o.log, ...(o.leaseTtlSeconds ? { ttlSeconds: o.leaseTtlSeconds } : {}) }),
      log: o.log,
      metrics: o.metrics,
      onFatal: o.onFatal,
      ...(o.drainTimeoutMs !== undefined ? { drainTimeoutMs: o.drainTimeoutMs } : {}),
    });
    const fenced = o.etcd.fenced(this.manager.leadership);
    const store = new StorePorts(fenced, o.log);
    const cache = new SwarmCache(new FencedSwarm(o.swarm, this.manager.leadership), {
      log: o.log,
      taskResyncEveryMs: o.resyncMs,
      relistEveryMs: o.relistMs,
      onEventReceived: (type, kept) => o.metrics.dockerEvents.inc({ type, kept: String(kept) }),
    });
    o.metrics.observeSwarmCache(() => cache.size());
    const controller = berthController({
      swarm: cache,
      store,
      routes: new RouteStore(fenced, o.routesPrefix),
      proxies: new ProxyAckStore(o.etcd, o.log),
      ...(o.proxyWaitMs !== undefined ? { proxyWaitMs: o.proxyWaitMs } : {}),
      ...(o.images ? { images: o.images } : {}),
      ...(o.swarmObjects ? { swarmObjects: o.swarmObjects } : {}),
      watch: (opts) => watchResources(o.etcd, 'all', undefined, opts),
      jobRequests: { store, watch: etcdJobRequestWatch(o.etcd, o.log) },
      releaseRequests: etcdReleaseRequestWatch(o.etcd, o.log),
      ...(o.registryNotifications ? { registryPushes: etcdRegistryPushWatch(o.etcd, o.log) } : {}),
      clock: realClock,
      metrics: o.metrics,
      log: o.log,
      resyncMs: o.resyncMs,
      fullResyncMs: o.fullResyncMs,
      workers: o.workers,
      reconcileTimeoutMs: o.reconcileTimeoutMs,
      stallTimeoutMs: o.stallTimeoutMs,
      installation: o.installation,
      orphanGraceMs: o.orphanGraceMs,
    });
    this.manager.add(controller);
    this.manager.add(heapTrimmer({ busySince: () => controller.busySince(), clock: realClock, log: o.log }));
  }

  /** Resolves once elected; rejects ("stopped before elected") when stopped while standing by. */
  async start(): Promise<void> {
    const { o } = this;
    // Every replica takes notifications (the registry may reach any); the pushes go to etcd, unfenced
    // like a CLI request, and the leader's watch acts on them.
    const notify = o.registryNotifications;
    const extra: Parameters<typeof startMetricsServer>[3] = notify
      ? {
          [NOTIFY_PATH]: registryNotificationHandler({
            token: notify.token,
            record: (pushes) => writeRegistryPushes(o.etcd, pushes, new Date()),
            log: o.log,
            onResult: (result) => o.metrics.registryNotifications.inc({ result }),
          }),
        }
      : {};
    const server = await startMetricsServer(o.metricsAddr, o.metrics.registry, this.manager, extra);
    if (this.stopping) {
      server.close();
      throw new Error('stopped before elected');
    }
    this.server = server;
    o.log.info({ metricsAddr: o.metricsAddr, identity: this.manager.identity }, 'controller starting; campaigning for leadership');
    await this.manager.start();
  }

  /**
   * Graceful stop: /readyz turns false, take no new keys, let running reconciles finish (up to
   * the drain timeout, then abandon them), stop the sources, resign leadership (a standby takes
   * over at once instead of after the lease TTL), close the server.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.o.log.info('controller stopping: draining running reconciles');
      await this.manager.stop();
      await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
      this.server?.closeAllConnections?.();
      this.o.log.info('controller stopped');
    })();
    return this.stopping;
  }
}
