import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every berth metric (docs/metrics.md), defined once here so the controller, the swarm
 * adapter and the routing module all observe the same objects. One registry per process:
 * prom-client's global registry would collide when tests start several controllers in-process,
 * so metrics live in our own registry and `createMetrics()` is idempotent per registry.
 */
export interface BerthMetrics {
  registry: Registry;
  reconcilesTotal: Counter<'kind' | 'result'>;
  reconcileDuration: Histogram<'kind'>;
  workqueueDepth: Gauge;
  workqueueRetries: Counter;
  environments: Gauge<'phase'>;
  /** Orphaned environments whose deletion waits: the grace, or the mass-deletion brake. */
  deletionsHeld: Gauge<'reason'>;
  environmentNodes: Gauge<'env'>;
  replicasDesired: Gauge<'env' | 'service'>;
  replicasRunning: Gauge<'env' | 'service'>;
  cutoversTotal: Counter<'result'>;
  cutoverDuration: Histogram;
  cutoverDrainWait: Histogram;
  rebalancesTotal: Counter<'env' | 'service' | 'result'>;
  routeConflicts: Gauge;
  releaseInfo: Gauge<'env' | 'release'>;
  promotionsTotal: Counter<'env' | 'result'>;
  promotionLeadTime: Histogram;
  proxyAppliedRevision: Gauge<'proxy'>;
  leader: Gauge;
  etcdWatchRestarts: Counter;
  dockerApiErrors: Counter<'operation'>;
  dockerApiRequests: Counter<'operation'>;
  dockerApiTimeouts: Counter<'operation'>;
  dockerEvents: Counter<'type' | 'kept'>;
  jobRunsTotal: Counter<'env' | 'job' | 'result'>;
  jobLastSuccess: Gauge<'env' | 'job'>;
  jobInterval: Gauge<'env' | 'job'>;
  registryNotifications: Counter<'result'>;
  jobDuration: Histogram<'env' | 'job'>;
  /** Reports the Swarm cache's size at every scrape (berth_swarm_cache_objects{kind}). */
  observeSwarmCache: (size: () => Record<'nodes' | 'services' | 'tasks', number>) => void;
}

export function createMetrics(registry: Registry = new Registry()): BerthMetrics {
  // The event-loop delay is sampled every 100 ms, not prom-client's default 10: a timer firing 100
  // times a second was half of an idle controller's CPU.
  collectDefaultMetrics({ register: registry, prefix: 'berth_', eventLoopMonitoringPrecision: 100 });
  const r = [registry];
  let cacheSize: (() => Record<'nodes' | 'services' | 'tasks', number>) | undefined;
  new Gauge({
    name: 'berth_swarm_cache_objects',
    help: 'Objects held by the Swarm cache, by kind',
    labelNames: ['kind'],
    registers: r,
    collect() {
      if (!cacheSize) return;
      for (const [kind, n] of Object.entries(cacheSize())) this.set({ kind }, n);
    },
  });
  return {
    registry,
    reconcilesTotal: new Counter({ name: 'berth_reconciles_total', help: 'Reconciles by kind and result', labelNames: ['kind', 'result'], registers: r }),
    reconcileDuration: new Histogram({
      name: 'berth_reconcile_duration_seconds',
      help: 'Time one reconcile took',
      labelNames: ['kind'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    }),
    workqueueDepth: new Gauge({ name: 'berth_workqueue_depth', help: 'Keys waiting in the work queue', registers: r }),
    workqueueRetries: new Counter({ name: 'berth_workqueue_retries_total', help: 'Keys re-queued with backoff after a failed reconcile', registers: r }),
    environments: new Gauge({ name: 'berth_environments', help: 'Environments by phase', labelNames: ['phase'], registers: r }),
    deletionsHeld: new Gauge({
      name: 'berth_deletions_held',
      help: 'Environments whose key vanished without a deletion mark and whose objects are kept (GracePeriod, LastEnvironment, MassDeletion)',
      labelNames: ['reason'],
      registers: r,
    }),
    environmentNodes: new Gauge({ name: 'berth_environment_nodes', help: 'Nodes held per environment', labelNames: ['env'], registers: r }),
    replicasDesired: new Gauge({ name: 'berth_service_replicas_desired', help: 'Desired replicas per service', labelNames: ['env', 'service'], registers: r }),
    replicasRunning: new Gauge({ name: 'berth_service_replicas_running', help: 'Running replicas per service', labelNames: ['env', 'service'], registers: r }),
    cutoversTotal: new Counter({ name: 'berth_cutovers_total', help: 'Blue-green cutovers by result', labelNames: ['result'], registers: r }),
    cutoverDuration: new Histogram({
      name: 'berth_cutover_duration_seconds',
      help: 'Time from green created to route switched',
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300],
      registers: r,
    }),
    cutoverDrainWait: new Histogram({
      name: 'berth_cutover_drain_wait_seconds',
      help: 'Time from a route switch until every registered proxy served it (the drain starts then)',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: r,
    }),
    rebalancesTotal: new Counter({
      name: 'berth_rebalances_total',
      help: "Rebalances of a service's tasks over its environment's nodes that ended, by result (balanced, unbalanced, superseded)",
      labelNames: ['env', 'service', 'result'],
      registers: r,
    }),
    routeConflicts: new Gauge({ name: 'berth_route_conflicts', help: 'Services whose route upstream is owned by another environment (RouteConflict)', registers: r }),
    releaseInfo: new Gauge({ name: 'berth_release_info', help: '1 for the release each environment runs (or last ran) while Ready', labelNames: ['env', 'release'], registers: r }),
    promotionsTotal: new Counter({
      name: 'berth_promotions_total',
      help: 'Upstream releases promoted (result=promoted), and promotions held because their markTag write failed (failed)',
      labelNames: ['env', 'result'],
      registers: r,
    }),
    promotionLeadTime: new Histogram({
      name: 'berth_promotion_lead_time_seconds',
      help: 'Time from the upstream Ready with a release to its promotion',
      buckets: [1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600],
      registers: r,
    }),
    proxyAppliedRevision: new Gauge({ name: 'berth_proxy_applied_revision', help: 'Routes revision each registered berth proxy acknowledged (nginx serves it)', labelNames: ['proxy'], registers: r }),
    leader: new Gauge({ name: 'berth_leader', help: '1 when this controller is the leader', registers: r }),
    etcdWatchRestarts: new Counter({ name: 'berth_etcd_watch_restarts_total', help: 'etcd watches re-established after an error', registers: r }),
    dockerApiErrors: new Counter({ name: 'berth_docker_api_errors_total', help: 'Failed Docker API calls by operation', labelNames: ['operation'], registers: r }),
    dockerApiRequests: new Counter({ name: 'berth_docker_api_requests_total', help: 'Docker API requests by operation, failed or not', labelNames: ['operation'], registers: r }),
    dockerApiTimeouts: new Counter({ name: 'berth_docker_api_timeouts_total', help: 'Docker API calls abandoned at their deadline (--docker-timeout), by operation', labelNames: ['operation'], registers: r }),
    dockerEvents: new Counter({
      name: 'berth_docker_events_total',
      help: 'Docker events received by type; kept=false: dropped as unable to change anything berth acts on (healthcheck execs)',
      labelNames: ['type', 'kept'],
      registers: r,
    }),
    jobRunsTotal: new Counter({
      name: 'berth_job_runs_total',
      help: 'Job run attempts ended, by result (succeeded, failed: a non-zero exit, a timeout, a replaced run)',
      labelNames: ['env', 'job', 'result'],
      registers: r,
    }),
    jobLastSuccess: new Gauge({ name: 'berth_job_last_success_timestamp_seconds', help: 'When a run of the job last succeeded (Unix time)', labelNames: ['env', 'job'], registers: r }),
    jobInterval: new Gauge({
      name: 'berth_job_interval_seconds',
      help: "The job's interval: from its next tick to the one after (what 'no success within 2 intervals' measures against)",
      labelNames: ['env', 'job'],
      registers: r,
    }),
    registryNotifications: new Counter({
      name: 'berth_registry_notifications_total',
      help: 'Registry notification requests by result: accepted (tag pushes recorded), ignored (no tag push), rejected (refused: token, size, format), failed (not stored, the registry retries)',
      labelNames: ['result'],
      registers: r,
    }),
    jobDuration: new Histogram({
      name: 'berth_job_duration_seconds',
      help: 'Time one job run attempt took, from its service created to its end seen',
      labelNames: ['env', 'job'],
      buckets: [1, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600],
      registers: r,
    }),
    observeSwarmCache: (size) => {
      cacheSize = size;
    },
  };
}

/**
 * The process-wide metrics, for code that is not handed a metrics object (the routing module
 * observes cutovers through this). Tests that want isolation call createMetrics() themselves.
 */
let shared: BerthMetrics | undefined;
export function metrics(): BerthMetrics {
  shared ??= createMetrics();
  return shared;
}
