import type { Logger } from 'pino';
import type { BerthMetrics } from '../metrics/registry.js';
import type { GcReleases, ImageResolver, ImageTagger, JobRequestStore, PromotionStore, ProxyAckReader, ReleaseRequestReader, ResourceDeleter, ResourceReader, RouteWriter, StatusWriter } from '../reconcile/ports.js';
import { EnvironmentReconciler } from '../reconcile/reconciler-environment.js';
import { GroupReconciler } from '../reconcile/reconciler-group.js';
import type { Clock } from '../runtime/clock.js';
import { Controller } from '../runtime/controller.js';
import { periodicSource } from '../runtime/source.js';
import type { ResourceWatch, WatchOptions } from '../store/watch.js';
import type { SwarmObjectLookup } from '../swarm/api.js';
import type { SwarmCache } from '../swarm/cache.js';
import { allKeys } from './list-keys.js';
import { berthReconciler } from './reconciler.js';
import { ResourceInformer } from './resource-informer.js';
import { etcdSource } from './source-etcd.js';
import { swarmCacheSource } from './source-swarm.js';
import { jobRequestSource, requestSource, type JobRequestWatch, type RequestWatch } from './source-job-requests.js';
import { PushedTags } from '../registry/notifications.js';
import { registryPushSource, type RegistryPushWatch } from './source-registry-pushes.js';

export interface BerthControllerDeps {
  /** The reconcilers read the Swarm through it and write through it to Docker. */
  swarm: SwarmCache;
  store: ResourceReader & ResourceDeleter & StatusWriter & PromotionStore & GcReleases & ReleaseRequestReader;
  /** This installation's id (etcd `<prefix>/installation`). */
  installation: string;
  /** How long an environment whose key vanished without a deletion mark keeps its objects. */
  orphanGraceMs?: number;
  routes: RouteWriter;
  /** `berth proxy` acknowledgements that gate a cutover's drain, and how long one may hold it. */
  proxies?: ProxyAckReader;
  proxyWaitMs?: number;
  /** `berth run` requests: read and cleared by the reconciles, watched so that a request is taken at once. */
  jobRequests?: { store: JobRequestStore; watch: JobRequestWatch };
  /** Resolves image tags to digests (src/registry). */
  images?: ImageResolver & ImageTagger;
  /** `berth approve` / `berth rollback` requests, watched so that a request is acted on at once. */
  releaseRequests?: RequestWatch;
  /** Tag pushes that registries notified (any replica stores them): tracked tags are resolved again at once. */
  registryPushes?: RegistryPushWatch;
  /** Finds the Swarm secrets and configs services name. */
  swarmObjects?: SwarmObjectLookup;
  /** Opens the watch of every group and environment. */
  watch: (opts: WatchOptions) => ResourceWatch;
  clock: Clock;
  metrics: BerthMetrics;
  log: Logger;
  /** How often the Swarm is listed again; the environments whose objects changed are reconciled. */
  resyncMs: number;
  /** How often every environment and group is reconciled, changed or not (spread over a tenth of it). */
  fullResyncMs: number;
  workers: number;
  reconcileTimeoutMs?: number;
  stallTimeoutMs?: number;
}

/**
 * berth's controller on the generic runtime: which events become which keys (etcd watch,
 * the Swarm cache fed by Docker's events, a periodic resync of every key) and which reconciler
 * handles each key. Everything reads the Swarm through the cache: at rest, no Docker call but
 * the event stream and one list per resync period.
 */
export function berthController(d: BerthControllerDeps): Controller {
  const now = () => new Date(d.clock.now());
  const pushed = new PushedTags();
  // Environments and groups are read from what the etcd watch delivered, not from etcd.
  const resources = new ResourceInformer(d.store);
  const envs = new EnvironmentReconciler({
    swarm: d.swarm,
    installation: d.installation,
    resources,
    status: d.store,
    routes: d.routes,
    promotions: d.store,
    gc: d.store,
    log: d.log,
    metrics: d.metrics,
    now,
    ...(d.proxies ? { proxies: d.proxies } : {}),
    ...(d.proxyWaitMs !== undefined ? { proxyWaitMs: d.proxyWaitMs } : {}),
    ...(d.orphanGraceMs !== undefined ? { orphanGraceMs: d.orphanGraceMs } : {}),
    ...(d.jobRequests ? { jobRequests: d.jobRequests.store } : {}),
    ...(d.images ? { images: d.images, tagger: d.images } : {}),
    ...(d.registryPushes ? { pushedDigest: pushed.digestFor } : {}),
    ...(d.swarmObjects ? { swarmObjects: d.swarmObjects } : {}),
    releases: d.store,
  });
  const groups = new GroupReconciler({ swarm: d.swarm, resources, status: d.store, log: d.log, now });
  const listKeys = () => allKeys(d.store, d.store, d.swarm, d.installation);
  return new Controller({
    name: 'berth',
    sources: [
      etcdSource({ watch: d.watch, log: d.log, onRestart: () => d.metrics.etcdWatchRestarts.inc(), informer: resources }),
      swarmCacheSource({ cache: d.swarm, listKeys, log: d.log }),
      ...(d.jobRequests ? [jobRequestSource(d.jobRequests.watch)] : []),
      ...(d.releaseRequests ? [requestSource('release-requests', d.releaseRequests)] : []),
      ...(d.registryPushes ? [registryPushSource(d.registryPushes, pushed, d.store, d.log)] : []),
      periodicSource({ name: 'full-resync', intervalMs: d.fullResyncMs, spreadMs: d.fullResyncMs / 10, clock: d.clock, list: listKeys, log: d.log }),
    ],
    reconciler: berthReconciler({ envs, groups }),
    workers: d.workers,
    clock: d.clock,
    reconcileTimeoutMs: d.reconcileTimeoutMs,
    stallTimeoutMs: d.stallTimeoutMs,
    metrics: d.metrics,
    log: d.log,
  });
}
