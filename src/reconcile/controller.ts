import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { AdapterError } from '../api/errors.js';
import type { BerthMetrics } from '../metrics/registry.js';
import { startMetricsServer } from '../metrics/server.js';
import type { EtcdClient } from '../store/client.js';
import type { RouteWriter } from '../store/routes-contract.js';
import type { SwarmApi } from '../swarm/api.js';
import { parseQueueKey } from './keys.js';
import { LeaderElector } from './leader.js';
import { WorkQueue } from './queue.js';
import { EnvironmentReconciler } from './reconciler-environment.js';
import { GroupReconciler } from './reconciler-group.js';
import { RunnableGroup } from './runnable.js';
import { runEtcdSource } from './source-etcd.js';
import { allKeys, runResync, runSwarmEvents } from './sources.js';
import { StorePorts } from './store-ports.js';
import { runWorkers, type ReconcileResult } from './workers.js';

export interface ControllerOptions {
  etcd: EtcdClient;
  swarm: SwarmApi;
  routes: RouteWriter;
  metrics: BerthMetrics;
  log: Logger;
  metricsAddr: string;
  resyncMs: number;
  workers: number;
  /** Called when leadership is lost or a runnable dies: the process should exit and restart. */
  onFatal?: (err: unknown) => void;
}

/**
 * The controller: a metrics server that always runs, a leader election, and — once leader —
 * the event sources, the resync and the workers, started and stopped together.
 */
export class Controller {
  private readonly o: ControllerOptions;
  private readonly queue: WorkQueue;
  private readonly group: RunnableGroup;
  private readonly elector: LeaderElector;
  private server: Server | undefined;
  private leader = false;
  private synced = false;
  private standby = false;
  private stopping: Promise<void> | undefined;
  private envs: EnvironmentReconciler | undefined;
  private groups: GroupReconciler | undefined;

  constructor(o: ControllerOptions) {
    this.o = o;
    this.queue = new WorkQueue({
      onDepthChange: (d) => o.metrics.workqueueDepth.set(d),
      onRetry: () => o.metrics.workqueueRetries.inc(),
    });
    this.group = new RunnableGroup((name, err) => {
      o.log.error({ runnable: name, err: (err as Error).message }, 'runnable failed');
      o.onFatal?.(err);
    });
    this.elector = new LeaderElector(o.etcd);
  }

  /** /readyz: a follower waiting for leadership is ready; a leader is ready once its sources synced. */
  ready(): boolean {
    return this.leader ? this.synced : this.standby;
  }

  async start(): Promise<void> {
    const { o } = this;
    this.server = await startMetricsServer(o.metricsAddr, o.metrics.registry, this);
    o.log.info({ metricsAddr: o.metricsAddr, identity: this.elector.identity }, 'controller starting; campaigning for leadership');
    this.standby = true;
    await this.elector.elect(this.group.signal, (err) => {
      o.log.error({ err: err.message }, 'leadership lost');
      o.metrics.leader.set(0);
      o.onFatal?.(err);
    });
    this.leader = true;
    this.standby = false;
    o.metrics.leader.set(1);
    o.log.info('elected leader');

    const ports = new StorePorts(o.etcd, o.log);
    this.envs = new EnvironmentReconciler({ swarm: o.swarm, resources: ports, status: ports, routes: o.routes, promotions: ports, log: o.log, metrics: o.metrics });
    this.groups = new GroupReconciler({ swarm: o.swarm, resources: ports, status: ports, log: o.log });
    const listKeys = () => allKeys(ports, ports, o.swarm);

    let etcdSynced = false;
    let resynced = false;
    const markSynced = () => {
      this.synced = etcdSynced && resynced;
    };
    this.group.start({
      name: 'etcd-source',
      run: (signal) =>
        runEtcdSource(o.etcd, signal, this.queue, o.log, {
          onSynced: () => {
            etcdSynced = true;
            markSynced();
          },
          onRestart: () => o.metrics.etcdWatchRestarts.inc(),
        }),
    });
    this.group.start({ name: 'swarm-events', run: (signal) => runSwarmEvents(o.swarm, signal, this.queue, listKeys, o.log) });
    this.group.start({
      name: 'resync',
      run: (signal) =>
        runResync(o.resyncMs, signal, listKeys, this.queue, o.log, () => {
          resynced = true;
          markSynced();
        }),
    });
    this.group.start({
      name: 'workers',
      run: () => runWorkers(this.queue, o.workers, (key) => this.reconcile(key), (key, err) => this.logFailure(key, err)),
    });
    this.group.start({ name: 'environment-gauge', run: (signal) => this.phaseGauge(ports, signal) });
  }

  private async reconcile(key: string): Promise<ReconcileResult | void> {
    const k = parseQueueKey(key);
    if (!k) return;
    const kind = k.kind === 'env' ? 'Environment' : 'EnvironmentGroup';
    const end = this.o.metrics.reconcileDuration.startTimer({ kind });
    try {
      const result = k.kind === 'env' ? await this.envs!.reconcile(k.name) : await this.groups!.reconcile(k.name);
      this.o.metrics.reconcilesTotal.inc({ kind, result: 'success' });
      return result;
    } catch (err) {
      this.o.metrics.reconcilesTotal.inc({ kind, result: 'error' });
      throw err;
    } finally {
      end();
    }
  }

  private logFailure(key: string, err: unknown): void {
    const recoverable = err instanceof AdapterError ? err.recoverable : undefined;
    this.o.log.warn({ key, err: (err as Error).message, recoverable, retries: this.queue.retries(key) + 1 }, 'reconcile failed; retrying with backoff');
  }

  /** berth_environments{phase}, from the statuses written. */
  private async phaseGauge(ports: StorePorts, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const names = await ports.listEnvironmentStatusNames();
        const counts = new Map<string, number>();
        for (const n of names) {
          const s = await ports.getEnvironmentStatus(n);
          if (s) counts.set(s.phase, (counts.get(s.phase) ?? 0) + 1);
        }
        for (const phase of ['Pending', 'Progressing', 'Ready', 'Degraded', 'Failed', 'Terminating']) {
          this.o.metrics.environments.set({ phase }, counts.get(phase) ?? 0);
        }
      } catch {
        /* next round */
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, 5_000);
        signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
      });
    }
  }

  /**
   * Graceful stop: take no new keys, let running reconciles finish, stop the sources, resign
   * leadership (a standby takes over at once instead of after the lease TTL), close the server.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.o.log.info('controller stopping: draining running reconciles');
      await this.queue.shutdown();
      await this.group.stop();
      await this.elector.resign();
      this.o.metrics.leader.set(0);
      await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
      this.server?.closeAllConnections?.();
      this.o.log.info('controller stopped');
    })();
    return this.stopping;
  }
}
