import type { Color } from '../api/status.js';
import type { EtcdClient } from '../store/client.js';
import type { Route, RouteWriter } from '../store/routes-contract.js';

/**
 * INTERIM RouteWriter, used only until the routing engineer's src/store/routes.ts lands (then
 * controller.ts switches to it and this file goes). Same key layout as routes-contract.ts:
 * `<routes>/<upstream>/servers/<id>`, `/color`, `/owner`, the set replaced in one transaction.
 */
export class InterimEtcdRoutes implements RouteWriter {
  constructor(
    private readonly client: EtcdClient,
    private readonly routesPrefix: string,
  ) {}

  private base(upstream: string): string {
    return `${this.routesPrefix}/${upstream}/`;
  }

  async setRoute(route: Route & { owner: { env: string; service: string } }): Promise<void> {
    const base = this.base(route.upstream);
    const etcd = this.client.etcd;
    await this.client.call(`set route ${route.upstream}`, async () => {
      const current = await etcd.getAll().prefix(`${base}servers/`).keys();
      const wanted = new Map(route.servers.map((s) => [`${base}servers/${s.replace(/[^A-Za-z0-9.-]/g, '_')}`, s]));
      const ops = [
        ...current.filter((k) => !wanted.has(k)).map((k) => etcd.delete().key(k)),
        ...[...wanted].map(([k, v]) => etcd.put(k).value(v)),
        etcd.put(`${base}owner`).value(`${route.owner.env}/${route.owner.service}`),
        ...(route.color ? [etcd.put(`${base}color`).value(route.color)] : []),
      ];
      await etcd.if(`${base}owner`, 'Create', '>', -1).then(...ops).commit();
    });
  }

  async deleteRoute(upstream: string): Promise<void> {
    await this.client.call(`delete route ${upstream}`, () => this.client.etcd.delete().prefix(this.base(upstream)).exec());
  }

  async listRoutes(): Promise<Route[]> {
    const all = await this.client.call('list routes', () => this.client.etcd.getAll().prefix(`${this.routesPrefix}/`).strings());
    const routes = new Map<string, Route>();
    for (const [key, value] of Object.entries(all)) {
      const rest = key.slice(this.routesPrefix.length + 1).split('/');
      const upstream = rest[0];
      if (!upstream) continue;
      const r = routes.get(upstream) ?? { upstream, servers: [] };
      routes.set(upstream, r);
      if (rest[1] === 'servers') r.servers.push(value);
      else if (rest[1] === 'color') r.color = value as Color;
      else if (rest[1] === 'owner') {
        const [env, service] = value.split('/');
        if (env && service) r.owner = { env, service };
      }
    }
    for (const r of routes.values()) r.servers.sort();
    return [...routes.values()];
  }
}
