import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { BerthMetrics } from '../metrics/registry.js';
import { startMetricsServer } from '../metrics/server.js';
import { StorePorts } from '../reconcile/store-ports.js';
import { realClock } from '../runtime/clock.js';
import { EtcdLeaderElection } from '../runtime/leader-etcd.js';
import { Manager } from '../runtime/manager.js';
import type { EtcdClient } from '../store/client.js';
import type { RouteWriter } from '../store/routes-contract.js';
import { watchResources } from '../store/watch.js';
import type { SwarmApi } from '../swarm/api.js';
import { SwarmCache } from '../swarm/cache.js';
import { berthController } from './berth-controller.js';

export interface ControllerProcessOptions {
  etcd: EtcdClient;
  swarm: SwarmApi;
  routes: RouteWriter;
  metrics: BerthMetrics;
  log: Logger;
  metricsAddr: string;
  resyncMs: number;
  fullResyncMs: number;
  workers: number;
  reconcileTimeoutMs?: number;
  /** This installation's id (etcd `<prefix>/installation`), read or created before the process starts. */
  installation: string;
  orphanGraceMs?: number;
  /** Called when leadership is lost or a runnable dies: the process should exit and restart. */
  onFatal: (err: unknown) => void;
}

/**
 * `berth controller`: a metrics server that always runs, and a manager that campaigns for
 * leadership over etcd and, once leader, runs berth's controller and the phase gauge.
 */
export class ControllerProcess {
  private readonly manager: Manager;
  private server: Server | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly o: ControllerProcessOptions) {
    const store = new StorePorts(o.etcd, o.log);
    const cache = new SwarmCache(o.swarm, {
      log: o.log,
      relistEveryMs: o.resyncMs,
      onEventReceived: (type, kept) => o.metrics.dockerEvents.inc({ type, kept: String(kept) }),
    });
    o.metrics.observeSwarmCache(() => cache.size());
    this.manager = new Manager({ election: new EtcdLeaderElection(o.etcd), log: o.log, metrics: o.metrics, onFatal: o.onFatal });
    this.manager.add(
      berthController({
        swarm: cache,
        store,
        routes: o.routes,
        watch: (opts) => watchResources(o.etcd, 'all', undefined, opts),
        clock: realClock,
        metrics: o.metrics,
        log: o.log,
        resyncMs: o.resyncMs,
        fullResyncMs: o.fullResyncMs,
        workers: o.workers,
        reconcileTimeoutMs: o.reconcileTimeoutMs,
        installation: o.installation,
        orphanGraceMs: o.orphanGraceMs,
      }),
    );
  }

  /** Resolves once elected; rejects ("stopped before elected") when stopped while standing by. */
  async start(): Promise<void> {
    const { o } = this;
    const server = await startMetricsServer(o.metricsAddr, o.metrics.registry, this.manager);
    if (this.stopping) {
      server.close();
      throw new Error('stopped before elected');
    }
    this.server = server;
    o.log.info({ metricsAddr: o.metricsAddr, identity: this.manager.identity }, 'controller starting; campaigning for leadership');
    await this.manager.start();
  }

  /**
   * Graceful stop: take no new keys, let running reconciles finish, stop the sources, resign
   * leadership (a standby takes over at once instead of after the lease TTL), close the server.
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
