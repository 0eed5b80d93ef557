import type { Color } from '../api/status.js';

/**
 * The confd-compatible route keys (docs/keys.md), under the routes prefix (default `/berth/routes`):
 *   <prefix>/<upstream>/servers/<id>   `host:port` of one live endpoint
 *   <prefix>/<upstream>/color          `blue` or `green` (blue-green services only)
 *   <prefix>/<upstream>/owner          `<env>/<service>`: which environment owns this route; every
 *                                      write checks it, so an environment never changes another's
 *   <prefix>/<upstream>/cutover        the last blue-green cutover (RouteCutover as JSON), written in
 *                                      the same transaction that switches the servers and colour
 */
export interface Route {
  upstream: string;
  /** `host:port`, sorted. */
  servers: string[];
  color?: Color;
  owner?: { env: string; service: string };
  cutover?: RouteCutover;
}

export type RouteOwner = { env: string; service: string };

/**
 * The record of a blue-green switch, kept beside the route it switched so that a controller that
 * crashes right after the switch resumes the same drain: from `drainFrom` (once set) or `at`.
 */
export interface RouteCutover {
  from?: Color;
  to: Color;
  /** When the route switched (the controller's clock). */
  at: string;
  /** etcd revision of the switch: a proxy serving this revision or later serves `to`. */
  revision: string;
  /** `berth proxy` instances registered at the switch: each must acknowledge it before the drain. */
  proxies: string[];
  /** When the drain began: every proxy applied the switch, or `--proxy-wait` ran out. */
  drainFrom?: string;
  /** Proxies dropped after `--proxy-wait` without acknowledging (ProxyLagging). */
  lagging?: string[];
}

/** A write refused because the route belongs to another environment (RouteConflict). */
export class RouteConflictError extends Error {
  constructor(
    readonly upstream: string,
    readonly owner: string,
  ) {
    super(`route ${upstream} belongs to ${owner}`);
    this.name = 'RouteConflictError';
  }
}

export interface RouteWriter {
  /**
   * No reader ever sees an empty or half-replaced set. An empty `servers` is allowed (the
   * renderers answer 503 for it) but a cutover never writes one.
   */
  /**
   * Makes the route exactly `servers` (+ `color`, + owner, + `cutover` when given) in ONE etcd
   * transaction that also checks the owner key: throws RouteConflictError when another
   * `<env>/<service>` owns the route. Returns the revision of the write (undefined: nothing changed).
   */
  setRoute(route: Route & { owner: RouteOwner }, cutover?: Omit<RouteCutover, 'revision'>): Promise<string | undefined>;
  /**
   * Several routes, each as setRoute makes it (no cutover record), in one transaction when none
   * conflicts. Returns the routes another owner holds; the others are written.
   */
  setRoutes(routes: (Route & { owner: RouteOwner })[]): Promise<RouteConflictError[]>;
  /** Rewrites the cutover record (drain start, lagging proxies), owner-checked like setRoute. */
  updateCutover(upstream: string, owner: RouteOwner, cutover: RouteCutover): Promise<void>;
  /** Removes every key of the route; with `owner`, only while it still owns it. */
  deleteRoute(upstream: string, owner?: RouteOwner): Promise<void>;
  /** Every route under the prefix: a read that grows with the whole installation. */
  listRoutes(): Promise<Route[]>;
  /** The routes of these upstreams that exist, read in one round trip (a reconcile's own routes). */
  getRoutes(upstreams: string[]): Promise<Route[]>;
}
