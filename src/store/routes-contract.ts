import type { Color } from '../api/status.js';

/**
 * The confd-compatible route keys (docs/keys.md), under the routes prefix (default `/berth/routes`):
 *   <prefix>/<upstream>/servers/<id>   `host:port` of one live endpoint
 *   <prefix>/<upstream>/color          `blue` or `green` (blue-green services only)
 *   <prefix>/<upstream>/owner          `<env>/<service>`: which environment owns this route, so
 *                                      berth removes only routes it wrote
 */
export interface Route {
  upstream: string;
  /** `host:port`, sorted. */
  servers: string[];
  color?: Color;
  owner?: { env: string; service: string };
}

export interface RouteWriter {
  /**
   * Makes the route exactly `servers` (+ `color`, + owner) in ONE etcd transaction: no reader
   * ever sees an empty or half-replaced set. An empty `servers` is allowed (the renderers
   * answer 503 for it) but a cutover never writes one.
   */
  setRoute(route: Route & { owner: { env: string; service: string } }): Promise<void>;
  /** Removes every key of the route. */
  deleteRoute(upstream: string): Promise<void>;
  /** Every route under the prefix: a read that grows with the whole installation. */
  listRoutes(): Promise<Route[]>;
  /** The routes of these upstreams that exist, read one upstream each (a reconcile's own routes). */
  getRoutes(upstreams: string[]): Promise<Route[]>;
}
