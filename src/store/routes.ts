import type { IKeyValue } from 'etcd3';
import { z } from 'zod';
import { resourceName, routeServer, serviceName, upstreamName } from '../api/primitives.js';
import { colorSchema } from '../api/status.js';
import { canonicalJson } from '../util/canonical-json.js';
import type { EtcdClient } from './client.js';
import { DEFAULT_PREFIX, normalizePrefix, storeConfig } from './client.js';
import { etcdRange } from './etcd-range.js';
import { listWatch, type ListWatch, type RestartReason } from './listwatch.js';
import { RouteConflictError, type Route, type RouteCutover, type RouteOwner, type RouteWriter } from './routes-contract.js';

export { RouteConflictError, type Route, type RouteCutover, type RouteOwner, type RouteWriter } from './routes-contract.js';

/**
 * The confd-compatible route keys (routes-contract.ts, docs/keys.md):
 *   <routes>/<upstream>/servers/<id>   `host:port`; id = the value with ':' replaced by '-'
 *   <routes>/<upstream>/color          `blue` | `green`
 *   <routes>/<upstream>/owner          `<env>/<service>`
 *   <routes>/<upstream>/cutover        the last blue-green switch (RouteCutover as JSON)
 */
export const DEFAULT_ROUTES_PREFIX = `${DEFAULT_PREFIX}/routes`;

/**
 * Where the route keys live, for every command: `--routes-prefix` over `BERTH_ROUTES_PREFIX` over
 * `<store prefix>/routes`, the store prefix being `--prefix` over `BERTH_PREFIX` over `/berth`.
 * An empty value counts as not given.
 */
export function routesPrefixFrom(flags: { routesPrefix?: string | undefined; prefix?: string | undefined }, env: NodeJS.ProcessEnv = process.env): string {
  const explicit = [flags.routesPrefix, env.BERTH_ROUTES_PREFIX].find((p) => p !== undefined && p.trim() !== '');
  if (explicit !== undefined) return normalizePrefix(explicit);
  return `${storeConfig({ prefix: flags.prefix }, env).prefix}/routes`;
}

/** A server value that can be spliced into `server <value> ...;` (api/primitives.ts `routeServer`). */
export function isValidServer(value: string): boolean {
  return routeServer.safeParse(value).success;
}

export function isValidUpstream(name: string): boolean {
  return upstreamName.safeParse(name).success;
}

/** `10.77.0.11:30001` → `10.77.0.11-30001`: etcd key-safe, confd-friendly, still readable. */
export function serverId(server: string): string {
  return server.replace(/:/g, '-');
}

export function routeKeys(prefix: string, upstream: string) {
  const base = `${prefix}/${upstream}`;
  return {
    upstream,
    base: `${base}/`,
    servers: `${base}/servers/`,
    server: (s: string) => `${base}/servers/${serverId(s)}`,
    color: `${base}/color`,
    owner: `${base}/owner`,
    cutover: `${base}/cutover`,
  };
}

/** The cutover record as stored: `revision` is left out by the switch itself (it is the key's mod revision). */
const storedCutoverSchema = z.strictObject({
  from: colorSchema.optional(),
  to: colorSchema,
  at: z.string(),
  revision: z.string().optional(),
  proxies: z.array(z.string()).default([]),
  drainFrom: z.string().optional(),
  lagging: z.array(z.string()).optional(),
});

function encodeCutover(c: Omit<RouteCutover, 'revision'> & { revision?: string }): string {
  return canonicalJson(c);
}

function ownerValue(o: RouteOwner): string {
  return `${o.env}/${o.service}`;
}

/** A key, its value, and (when read with it) the key's mod revision. */
export type RouteKv = [key: string, value: string, modRevision?: string];

export type InvalidRouteHandler = (key: string, reason: string) => void;

/**
 * Pure: turns the keys under the routes prefix into routes, validating everything before it can
 * reach a renderer. An invalid upstream name skips the whole route; an invalid server value skips
 * that server; an unknown colour is dropped. Every skip is reported to `onInvalid`.
 */
export function decodeRoutes(prefix: string, kvs: Iterable<RouteKv>, onInvalid: InvalidRouteHandler = () => {}): Route[] {
  const byUpstream = new Map<string, Route>();
  const badUpstreams = new Set<string>();
  for (const [key, value, modRevision] of kvs) {
    if (!key.startsWith(`${prefix}/`)) continue;
    const rest = key.slice(prefix.length + 1).split('/');
    const upstream = rest[0] ?? '';
    if (!isValidUpstream(upstream)) {
      if (!badUpstreams.has(upstream)) onInvalid(key, `invalid upstream name "${upstream}"`);
      badUpstreams.add(upstream);
      continue;
    }
    // Any key under a valid upstream makes the route exist (as confd's `lsdir` sees it): with no
    // valid server it renders the 503 block.
    let route = byUpstream.get(upstream);
    if (!route) {
      route = { upstream, servers: [] };
      byUpstream.set(upstream, route);
    }
    if (rest.length === 3 && rest[1] === 'servers' && rest[2] !== '') {
      if (isValidServer(value)) route.servers.push(value);
      else onInvalid(key, `invalid server value ${JSON.stringify(value)}`);
    } else if (rest.length === 2 && rest[1] === 'color') {
      const color = colorSchema.safeParse(value);
      if (color.success) route.color = color.data;
      else onInvalid(key, `invalid color ${JSON.stringify(value)}`);
    } else if (rest.length === 2 && rest[1] === 'owner') {
      const [env, service, extra] = value.split('/');
      if (extra === undefined && resourceName.safeParse(env).success && serviceName.safeParse(service).success) {
        route.owner = { env: env!, service: service! };
      } else onInvalid(key, `invalid owner ${JSON.stringify(value)}`);
    } else if (rest.length === 2 && rest[1] === 'cutover') {
      const parsed = (() => {
        try {
          return storedCutoverSchema.safeParse(JSON.parse(value));
        } catch {
          return undefined;
        }
      })();
      const revision = parsed?.success ? (parsed.data.revision ?? modRevision) : undefined;
      if (parsed?.success && revision !== undefined) route.cutover = { ...parsed.data, revision };
      else if (modRevision !== undefined || parsed?.success !== true) onInvalid(key, `invalid cutover record ${JSON.stringify(value)}`);
    }
    // Other keys under a route (confd users may keep their own) are ignored.
  }
  const routes = [...byUpstream.values()];
  for (const r of routes) r.servers = [...new Set(r.servers)].sort();
  return routes.sort((a, b) => (a.upstream < b.upstream ? -1 : a.upstream > b.upstream ? 1 : 0));
}

export interface RouteWatchOptions {
  onInvalid?: InvalidRouteHandler;
  onRestart?: (reason: RestartReason, err: Error) => void;
}

export type RouteWatch = Pick<ListWatch, 'close'>;

const toRouteKv = (kv: IKeyValue): RouteKv => [kv.key.toString(), kv.value.toString(), kv.mod_revision];

/** What one route's write changes, and the mod revisions of the keys it read that must still hold. */
interface RouteWrite {
  base: string;
  compares: [key: string, modRevision: number][];
  deletes: string[];
  puts: [key: string, value: string][];
}

/** The keys a route should have, after checking its names: nothing that would break an nginx config is written. */
function desiredKeys(keys: ReturnType<typeof routeKeys>, route: Route & { owner: RouteOwner }, cutover?: Omit<RouteCutover, 'revision'>): Map<string, string> {
  const { upstream } = route;
  if (!isValidUpstream(upstream)) throw new Error(`refusing to write route: invalid upstream name "${upstream}"`);
  for (const s of route.servers) {
    if (!isValidServer(s)) throw new Error(`refusing to write route ${upstream}: invalid server ${JSON.stringify(s)}`);
  }
  const desired = new Map<string, string>();
  for (const s of new Set(route.servers)) desired.set(keys.server(s), s);
  if (route.color) desired.set(keys.color, route.color);
  desired.set(keys.owner, ownerValue(route.owner));
  if (cutover) desired.set(keys.cutover, encodeCutover(cutover));
  return desired;
}

/**
 * From the route's keys as read: what to delete and put to make them `desired` (undefined: they
 * are), and what must not have changed since. Throws RouteConflictError when another owner holds it.
 */
function planRouteWrite(keys: ReturnType<typeof routeKeys>, desired: Map<string, string>, read: RouteKv[]): RouteWrite | undefined {
  const current = new Map<string, { value: string; mod: number }>();
  for (const [key, value, mod] of read) current.set(key, { value, mod: Number(mod ?? 0) });
  const owner = desired.get(keys.owner)!;
  const currentOwner = current.get(keys.owner)?.value;
  if (currentOwner !== undefined && currentOwner !== owner) throw new RouteConflictError(keys.upstream, currentOwner);
  // Only berth's own keys: servers/*, color, owner (the cutover record stays until the next one).
  const deletes = [...current.keys()].filter((k) => !desired.has(k) && (k.startsWith(keys.servers) || k === keys.color || k === keys.owner));
  const puts = [...desired].filter(([k, v]) => current.get(k)?.value !== v);
  if (deletes.length === 0 && puts.length === 0) return undefined;
  const touched = new Set([keys.owner, ...deletes, ...puts.map(([k]) => k)]);
  return { base: keys.base, compares: [...touched].map((k) => [k, current.get(k)?.mod ?? 0]), deletes, puts };
}

/** RouteWriter over etcd; also lists and watches the full route table (for `berth proxy`). */
export class RouteStore implements RouteWriter {
  readonly prefix: string;
  /**
   * The keys of each route as `getRoutes` last read them, taken by the `setRoute` that usually
   * follows that read (a reconcile reads its routes, then writes those that changed): its first
   * attempt needs no read of its own. The write's transaction compares every key it changes and
   * the owner key, so a read that went stale fails it, and the retry reads afresh.
   */
  private readonly lastRead = new Map<string, RouteKv[]>();

  constructor(
    private readonly client: EtcdClient,
    prefix: string = DEFAULT_ROUTES_PREFIX,
    private readonly onInvalid: InvalidRouteHandler = () => {},
  ) {
    this.prefix = normalizePrefix(prefix);
    if (this.prefix === '') throw new Error('the routes prefix must not be empty');
  }

  async setRoute(route: Route & { owner: RouteOwner }, cutover?: Omit<RouteCutover, 'revision'>): Promise<string | undefined> {
    const keys = routeKeys(this.prefix, route.upstream);
    const desired = desiredKeys(keys, route, cutover);
    let read = this.takeLastRead(keys.base);
    for (let attempt = 0; ; attempt++) {
      const write = planRouteWrite(keys, desired, (read ??= await this.range(keys.base)));
      read = undefined;
      if (!write) return undefined;
      const revision = await this.client.writeTogether(`txn ${keys.base}`, write);
      if (revision !== undefined) return revision;
      await this.client.checkFence(`txn ${keys.base}`);
      if (attempt >= 4) throw new Error(`route ${route.upstream}: concurrent modification, gave up after ${attempt + 1} attempts`);
    }
  }

  /**
   * Several routes at once (a reconcile's rolling services): one transaction, so one revision
   * for a watcher (one reload of nginx) and one round trip, shared with the writes of other
   * reconciles under way (EtcdClient.writeTogether). Optimistic concurrency: the write compares
   * every key it read or changes, the owner keys among them, so an owner written meanwhile by
   * another environment fails it. When it cannot be (a route another owner holds, a key changed
   * since the read), each route is written on its own, as setRoute. Returns the routes another
   * owner holds.
   */
  async setRoutes(routes: (Route & { owner: RouteOwner })[]): Promise<RouteConflictError[]> {
    const all = routes.map((route) => {
      const keys = routeKeys(this.prefix, route.upstream);
      return { route, keys, desired: desiredKeys(keys, route) };
    });
    const reads = all.map(({ keys }) => this.takeLastRead(keys.base));
    const unread = all.filter((_, i) => !reads[i]).map(({ keys }) => keys.base);
    const fresh = await this.ranges(unread);
    const writes: RouteWrite[] = [];
    try {
      for (const [i, { keys, desired }] of all.entries()) {
        const write = planRouteWrite(keys, desired, reads[i] ?? fresh.shift()!);
        if (write) writes.push(write);
      }
    } catch (err) {
      if (!(err instanceof RouteConflictError)) throw err;
      return this.oneByOne(routes);
    }
    if (writes.length === 0) return [];
    const names = writes.map((w) => w.base).join(',');
    const together = { compares: writes.flatMap((w) => w.compares), deletes: writes.flatMap((w) => w.deletes), puts: writes.flatMap((w) => w.puts) };
    if ((await this.client.writeTogether(`txn ${names}`, together)) !== undefined) return [];
    await this.client.checkFence(`txn ${names}`);
    return this.oneByOne(routes);
  }

  private async oneByOne(routes: (Route & { owner: RouteOwner })[]): Promise<RouteConflictError[]> {
    const conflicts: RouteConflictError[] = [];
    for (const route of routes) {
      try {
        await this.setRoute(route);
      } catch (err) {
        if (!(err instanceof RouteConflictError)) throw err;
        conflicts.push(err);
      }
    }
    return conflicts;
  }

  private takeLastRead(base: string): RouteKv[] | undefined {
    const read = this.lastRead.get(base);
    this.lastRead.delete(base);
    return read;
  }

  async updateCutover(upstream: string, owner: RouteOwner, cutover: RouteCutover): Promise<void> {
    const keys = routeKeys(this.prefix, upstream);
    const out = await this.client.call(`txn ${keys.cutover}`, () =>
      this.client.txn(keys.owner, 'Value', '==', ownerValue(owner)).then(this.client.etcd.put(keys.cutover).value(encodeCutover(cutover))).commit(),
    );
    if (out.succeeded) return;
    await this.client.checkFence(`txn ${keys.cutover}`);
    throw new RouteConflictError(upstream, (await this.client.etcd.get(keys.owner).string()) ?? '(none)');
  }

  async deleteRoute(upstream: string, owner?: RouteOwner): Promise<void> {
    const keys = routeKeys(this.prefix, upstream);
    this.lastRead.delete(keys.base);
    if (!owner) {
      await this.client.delete(`delete ${keys.base}`, this.client.etcd.delete().prefix(keys.base));
      return;
    }
    const out = await this.client.call(`txn delete ${keys.base}`, () =>
      this.client.txn(keys.owner, 'Value', '==', ownerValue(owner)).then(this.client.etcd.delete().prefix(keys.base)).commit(),
    );
    if (!out.succeeded) await this.client.checkFence(`txn delete ${keys.base}`);
  }

  async listRoutes(): Promise<Route[]> {
    return decodeRoutes(this.prefix, await this.range(`${this.prefix}/`), this.onInvalid);
  }

  async getRoutes(upstreams: string[]): Promise<Route[]> {
    const bases = [...new Set(upstreams)].map((u) => routeKeys(this.prefix, u).base);
    const lists = await this.ranges(bases);
    bases.forEach((base, i) => this.lastRead.set(base, lists[i]!));
    return decodeRoutes(this.prefix, lists.flat(), this.onInvalid);
  }

  /** The keys under each of `prefixes`, in one round trip. */
  private async ranges(prefixes: string[]): Promise<RouteKv[][]> {
    return (await this.client.rangePrefixes(`get ${prefixes.join(',')}`, prefixes)).map((kvs) => kvs.map(toRouteKv));
  }

  /** The keys under `prefix` with their mod revisions: a cutover record takes its revision from its key. */
  private async range(prefix: string): Promise<RouteKv[]> {
    const res = await this.client.call(`get ${prefix}`, () => this.client.etcd.getAll().prefix(prefix).exec());
    return res.kvs.map(toRouteKv);
  }

  /**
   * List + watch (listwatch.ts): calls `onRoutes` with the full, validated route table first and
   * after every etcd watch response (one txn = one response = one call). A broken stream resumes
   * where it stopped; a compacted one relists. Values are validated per table (decodeRoutes),
   * not per key: a route exists as soon as any key lies under a valid upstream name.
   */
  watchRoutes(onRoutes: (routes: Route[], revision: string) => void, opts: RouteWatchOptions = {}): RouteWatch {
    const onInvalid = opts.onInvalid ?? this.onInvalid;
    return listWatch<string>(etcdRange(this.client), {
      prefix: `${this.prefix}/`,
      decoder: { owns: () => true, decode: (_key, value) => value },
      deliver: ({ items, revision }) => onRoutes(decodeRoutes(this.prefix, items, onInvalid), revision),
      ...(opts.onRestart ? { onRestart: opts.onRestart } : {}),
    });
  }
}
