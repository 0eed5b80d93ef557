import type { IKeyValue, Watcher } from 'etcd3';
import { upstreamName } from '../api/primitives.js';
import { resourceName, serviceName } from '../api/primitives.js';
import type { Color } from '../api/status.js';
import type { EtcdClient } from './client.js';
import { normalizePrefix } from './client.js';
import type { Route, RouteWriter } from './routes-contract.js';
import { Backoff } from '../util/backoff.js';

export type { Route, RouteWriter } from './routes-contract.js';

/**
 * The confd-compatible route keys (routes-contract.ts, docs/keys.md):
 *   <routes>/<upstream>/servers/<id>   `host:port`; id = the value with ':' replaced by '-'
 *   <routes>/<upstream>/color          `blue` | `green`
 *   <routes>/<upstream>/owner          `<env>/<service>`
 * `<routes>` is `--routes-prefix` / `BERTH_ROUTES_PREFIX`, default `<BERTH_PREFIX>/routes`
 * (`/berth/routes`).
 */
export const DEFAULT_ROUTES_PREFIX = '/berth/routes';

export function routesPrefixFrom(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const explicit = flag ?? env.BERTH_ROUTES_PREFIX;
  if (explicit !== undefined && explicit.trim() !== '') return normalizePrefix(explicit);
  if (env.BERTH_PREFIX !== undefined && env.BERTH_PREFIX.trim() !== '') return `${normalizePrefix(env.BERTH_PREFIX)}/routes`;
  return DEFAULT_ROUTES_PREFIX;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * A server value that can be spliced into `server <value> ...;` without changing the config's
 * meaning: IPv4 or host name, `:`, port 1-65535 (no leading zeros). Anything else is never rendered.
 */
export function isValidServer(value: string): boolean {
  const m = /^([^:]+):([1-9]\d{0,4})$/.exec(value);
  if (!m) return false;
  const host = m[1]!;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return false;
  // A dotted all-numeric host must be a real IPv4 address, not "999.1.1.1".
  if (/^[\d.]+$/.test(host)) return IPV4.test(host);
  return HOSTNAME.test(host);
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
    base: `${base}/`,
    servers: `${base}/servers/`,
    server: (s: string) => `${base}/servers/${serverId(s)}`,
    color: `${base}/color`,
    owner: `${base}/owner`,
  };
}

export type InvalidRouteHandler = (key: string, reason: string) => void;

/**
 * Pure: turns the keys under the routes prefix into routes, validating everything before it can
 * reach a renderer. An invalid upstream name skips the whole route; an invalid server value skips
 * that server; an unknown colour is dropped. Every skip is reported to `onInvalid`.
 */
export function decodeRoutes(prefix: string, kvs: Iterable<[string, string]>, onInvalid: InvalidRouteHandler = () => {}): Route[] {
  const byUpstream = new Map<string, Route>();
  const badUpstreams = new Set<string>();
  for (const [key, value] of kvs) {
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
    const r = route;
    const ensure = () => r;
    if (rest.length === 3 && rest[1] === 'servers' && rest[2] !== '') {
      if (isValidServer(value)) ensure().servers.push(value);
      else onInvalid(key, `invalid server value ${JSON.stringify(value)}`);
    } else if (rest.length === 2 && rest[1] === 'color') {
      if (value === 'blue' || value === 'green') ensure().color = value as Color;
      else onInvalid(key, `invalid color ${JSON.stringify(value)}`);
    } else if (rest.length === 2 && rest[1] === 'owner') {
      const [env, service, extra] = value.split('/');
      if (extra === undefined && resourceName.safeParse(env).success && serviceName.safeParse(service).success) {
        ensure().owner = { env: env!, service: service! };
      } else onInvalid(key, `invalid owner ${JSON.stringify(value)}`);
    }
    // Other keys under a route (confd users may keep their own) are ignored.
  }
  const routes = [...byUpstream.values()];
  for (const r of routes) r.servers = [...new Set(r.servers)].sort();
  return routes.sort((a, b) => (a.upstream < b.upstream ? -1 : a.upstream > b.upstream ? 1 : 0));
}

export interface RouteWatchOptions {
  onInvalid?: InvalidRouteHandler;
  onRestart?: (reason: 'disconnected' | 'compacted' | 'error', err: Error) => void;
}

export interface RouteWatch {
  close(): Promise<void>;
}

/** RouteWriter over etcd; also lists and watches the full route table (for `berth proxy`). */
export class RouteStore implements RouteWriter {
  readonly prefix: string;

  constructor(
    private readonly client: EtcdClient,
    prefix: string = DEFAULT_ROUTES_PREFIX,
    private readonly onInvalid: InvalidRouteHandler = () => {},
  ) {
    this.prefix = normalizePrefix(prefix);
    if (this.prefix === '') throw new Error('the routes prefix must not be empty');
  }

  async setRoute(route: Route & { owner: { env: string; service: string } }): Promise<void> {
    const { upstream } = route;
    if (!isValidUpstream(upstream)) throw new Error(`refusing to write route: invalid upstream name "${upstream}"`);
    for (const s of route.servers) {
      if (!isValidServer(s)) throw new Error(`refusing to write route ${upstream}: invalid server ${JSON.stringify(s)}`);
    }
    const owner = `${route.owner.env}/${route.owner.service}`;
    const keys = routeKeys(this.prefix, upstream);
    const desired = new Map<string, string>();
    for (const s of new Set(route.servers)) desired.set(keys.server(s), s);
    if (route.color) desired.set(keys.color, route.color);
    desired.set(keys.owner, owner);

    for (let attempt = 0; ; attempt++) {
      const res = await this.client.call(`get ${keys.base}`, () => this.client.etcd.getAll().prefix(keys.base).exec());
      const current = new Map<string, { value: string; mod: string }>();
      for (const kv of res.kvs) current.set(kv.key.toString(), { value: kv.value.toString(), mod: kv.mod_revision });
      // Only berth's own keys: servers/*, color, owner. Unknown keys stay.
      const stale = [...current.keys()].filter(
        (k) => !desired.has(k) && (k.startsWith(keys.servers) || k === keys.color || k === keys.owner),
      );
      const puts = [...desired].filter(([k, v]) => current.get(k)?.value !== v);
      if (stale.length === 0 && puts.length === 0) return;
      // Optimistic concurrency: the txn applies only if no key we read or write changed since.
      let txn = this.client.etcd.if(keys.owner, 'Mod', '==', Number(current.get(keys.owner)?.mod ?? 0));
      for (const k of new Set([...stale, ...puts.map(([k2]) => k2)])) {
        if (k !== keys.owner) txn = txn.and(k, 'Mod', '==', Number(current.get(k)?.mod ?? 0));
      }
      txn = txn.then(
        ...stale.map((k) => this.client.etcd.delete().key(k)),
        ...puts.map(([k, v]) => this.client.etcd.put(k).value(v)),
      );
      const out = await this.client.call(`txn ${keys.base}`, () => txn.commit());
      if (out.succeeded) return;
      if (attempt >= 4) throw new Error(`route ${upstream}: concurrent modification, gave up after ${attempt + 1} attempts`);
    }
  }

  async deleteRoute(upstream: string): Promise<void> {
    const keys = routeKeys(this.prefix, upstream);
    await this.client.call(`delete ${keys.base}`, () => this.client.etcd.delete().prefix(keys.base).exec());
  }

  async listRoutes(): Promise<Route[]> {
    return (await this.listAt()).routes;
  }

  /** The route table and the revision it was read at. */
  async listAt(): Promise<{ routes: Route[]; revision: string; kvs: Map<string, string> }> {
    const res = await this.client.call(`get ${this.prefix}/`, () => this.client.etcd.getAll().prefix(`${this.prefix}/`).exec());
    const kvs = new Map<string, string>();
    for (const kv of res.kvs) kvs.set(kv.key.toString(), kv.value.toString());
    return { routes: decodeRoutes(this.prefix, kvs, this.onInvalid), revision: res.header.revision, kvs };
  }

  /**
   * List + watch: calls `onRoutes` with the full, validated route table first and after every
   * etcd watch response (one txn = one response = one call). On a broken stream or a compacted
   * start revision it relists and watches again from the relist's revision, so no change is lost.
   */
  watchRoutes(onRoutes: (routes: Route[], revision: string) => void, opts: RouteWatchOptions = {}): RouteWatch {
    return new RouteWatcher(this, this.client, onRoutes, { onInvalid: this.onInvalid, ...opts });
  }
}

class RouteWatcher implements RouteWatch {
  private closed = false;
  private watcher: Watcher | undefined;
  private kvs = new Map<string, string>();
  private last = 0n;
  private readonly reconnect = new Backoff(100, 2_000);

  constructor(
    private readonly store: RouteStore,
    private readonly client: EtcdClient,
    private readonly onRoutes: (routes: Route[], revision: string) => void,
    private readonly opts: RouteWatchOptions,
  ) {
    void this.relist();
  }

  private emit(): void {
    if (this.closed) return;
    this.onRoutes(decodeRoutes(this.store.prefix, this.kvs, this.opts.onInvalid), this.last.toString());
  }

  private async relist(): Promise<void> {
    while (!this.closed) {
      try {
        const { revision, kvs } = await this.store.listAt();
        if (this.closed) return;
        this.kvs = kvs;
        this.last = BigInt(revision);
        this.reconnect.reset();
        this.emit();
        this.open();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, this.reconnect.next()));
      }
    }
  }

  private open(): void {
    if (this.closed) return;
    const w = this.client.etcd
      .watch()
      .prefix(`${this.store.prefix}/`)
      .startRevision((this.last + 1n).toString())
      .watcher();
    this.watcher = w;
    w.on('data', (res) => {
      if (this.watcher !== w || res.events.length === 0) return;
      for (const ev of res.events) this.apply(ev.type, ev.kv);
      this.emit();
    });
    const restart = (reason: 'disconnected' | 'compacted' | 'error', err: Error) => {
      if (this.watcher !== w) return;
      this.watcher = undefined;
      void w.cancel().catch(() => undefined);
      if (this.closed) return;
      this.opts.onRestart?.(reason, err);
      // Relist in every case: the route table is small and a relist can never miss a change.
      setTimeout(() => void this.relist(), reason === 'compacted' ? 0 : this.reconnect.next());
    };
    w.on('disconnected', (err: Error) => restart('disconnected', err));
    w.on('error', (err: Error) => restart(/compacted/i.test(err.message) ? 'compacted' : 'error', err));
  }

  private apply(type: 'Put' | 'Delete', kv: IKeyValue): void {
    const rev = BigInt(kv.mod_revision);
    if (rev > this.last) this.last = rev;
    const key = kv.key.toString();
    if (type === 'Delete') this.kvs.delete(key);
    else this.kvs.set(key, kv.value.toString());
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await w.cancel().catch(() => undefined);
  }
}
