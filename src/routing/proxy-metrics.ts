import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** `berth proxy`'s own metrics, on its own registry (it runs apart from the controller). */
export interface ProxyMetrics {
  registry: Registry;
  reloads: Counter<'result'>;
  renderSeconds: Histogram;
  applySeconds: Histogram;
  routes: Gauge;
  invalidKeys: Counter;
  watchRestarts: Counter<'reason'>;
  lastReloadSuccess: Gauge;
  configGood: Gauge;
  routesRejected: Gauge;
  routeRejections: Counter;
  appliedRevision: Gauge;
}

export function createProxyMetrics(registry = new Registry()): ProxyMetrics {
  // Sampled every 100 ms, not prom-client's default 10 (a timer 100 times a second, at rest).
  collectDefaultMetrics({ register: registry, prefix: 'berth_proxy_', eventLoopMonitoringPrecision: 100 });
  const registers = [registry];
  return {
    registry,
    reloads: new Counter({
      name: 'berth_proxy_reloads_total',
      help: 'nginx config applications by result (reloaded, check_failed: nothing could apply, reload_failed: retried with backoff, write_failed)',
      labelNames: ['result'],
      registers,
    }),
    renderSeconds: new Histogram({
      name: 'berth_proxy_render_seconds',
      help: 'Time to render the nginx snippet from the route table',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
      registers,
    }),
    applySeconds: new Histogram({
      name: 'berth_proxy_apply_seconds',
      help: 'Time to write, check and reload nginx',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    routes: new Gauge({ name: 'berth_proxy_routes', help: 'Routes in the last rendered file', registers }),
    invalidKeys: new Counter({ name: 'berth_proxy_invalid_keys_total', help: 'Route keys skipped because their value would break nginx', registers }),
    watchRestarts: new Counter({ name: 'berth_proxy_watch_restarts_total', help: 'Route watch re-established, by reason (disconnected: resumed where it stopped; compacted, canceled: relisted)', labelNames: ['reason'], registers }),
    lastReloadSuccess: new Gauge({ name: 'berth_proxy_last_reload_success_timestamp_seconds', help: 'Unix time of the last successful reload', registers }),
    routesRejected: new Gauge({ name: 'berth_proxy_routes_rejected', help: 'Routes whose current keys nginx -t rejects: kept at their last good block, or left out', registers }),
    routeRejections: new Counter({ name: 'berth_proxy_route_rejections_total', help: 'Route blocks nginx -t rejected (each is isolated; the other routes still apply)', registers }),
    appliedRevision: new Gauge({ name: 'berth_proxy_applied_revision', help: 'etcd revision of the route table nginx serves (acknowledged under <prefix>/proxies/<id>)', registers }),
    configGood: new Gauge({ name: 'berth_proxy_config_current', help: '1 when nginx serves the latest route table, 0 when the last check or reload failed', registers }),
  };
}
