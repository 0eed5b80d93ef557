import type { Environment, EnvironmentGroup, EnvironmentStatus, GroupStatus } from '../../src/api/index.js';
import type { ApprovalRequest, PromotionRequest, RollbackRequest } from '../../src/api/status.js';
import type { GcReleases, ProxyAck, ProxyAckReader, PromotionStore, ReleaseRequestReader, ResourceDeleter, ResourceReader, Route, RouteWriter, StatusWriter } from '../../src/reconcile/ports.js';
import { RouteConflictError, type RouteCutover, type RouteOwner } from '../../src/store/routes-contract.js';

/** In-memory etcd for reconciler tests: resources, statuses, route keys and promotion requests. */
export class FakeStore implements ResourceReader, ResourceDeleter, StatusWriter, RouteWriter, PromotionStore, ProxyAckReader, ReleaseRequestReader, GcReleases {
  envs = new Map<string, Environment>();
  invalid = new Map<string, Error>();
  groups = new Map<string, EnvironmentGroup>();
  envStatus = new Map<string, EnvironmentStatus>();
  groupStatus = new Map<string, GroupStatus>();
  routes = new Map<string, Route>();
  /** Every setRoute call, in order (what a route watcher would have seen). */
  routeWrites: Route[] = [];
  /** `<env>/<service>` → request. */
  promotions = new Map<string, PromotionRequest>();
  /** `berth approve` / `berth rollback` requests per environment. */
  approvals = new Map<string, ApprovalRequest>();
  rollbacks = new Map<string, RollbackRequest>();
  /** Registered `berth proxy` instances and the routes revision each acknowledged. */
  proxies = new Map<string, ProxyAck>();
  /** etcd's revision: raised by every route write. */
  revision = 100;
  /** Makes the next status write fail (a controller killed between the route switch and the status write). */
  failNextStatusWrite: Error | undefined;
  /** Environments released by `berth gc --confirm`. */
  gcReleased = new Set<string>();

  async getEnvironment(name: string) {
    const bad = this.invalid.get(name);
    if (bad) throw bad;
    return structuredClone(this.envs.get(name));
  }
  async getGroup(name: string) {
    return structuredClone(this.groups.get(name));
  }
  async listEnvironments() {
    return [...this.envs.values()];
  }
  async listGroups() {
    return [...this.groups.values()];
  }
  async listEnvironmentNames() {
    return [...this.envs.keys(), ...this.invalid.keys()];
  }
  async markEnvironmentDeleted(name: string) {
    const e = this.envs.get(name);
    if (e) e.metadata.deletionTimestamp ??= '2030-01-01T00:00:00.000Z';
  }
  async isGcReleased(env: string) {
    return this.gcReleased.has(env);
  }
  async clearGcRelease(env: string) {
    this.gcReleased.delete(env);
  }
  async deleteEnvironment(name: string) {
    this.envs.delete(name);
  }
  async readApproval(env: string) {
    return structuredClone(this.approvals.get(env));
  }
  async readRollback(env: string) {
    return structuredClone(this.rollbacks.get(env));
  }
  async clearReleaseRequests(env: string) {
    this.approvals.delete(env);
    this.rollbacks.delete(env);
  }
  async getEnvironmentStatus(name: string) {
    return structuredClone(this.envStatus.get(name));
  }
  async putEnvironmentStatus(name: string, s: EnvironmentStatus) {
    const fail = this.failNextStatusWrite;
    this.failNextStatusWrite = undefined;
    if (fail) throw fail;
    this.envStatus.set(name, structuredClone(s));
  }
  async deleteEnvironmentStatus(name: string) {
    this.envStatus.delete(name);
  }
  async listEnvironmentStatusNames() {
    return [...this.envStatus.keys()];
  }
  async listEnvironmentStatuses() {
    return structuredClone(this.envStatus);
  }
  async getGroupStatus(name: string) {
    return structuredClone(this.groupStatus.get(name));
  }
  async putGroupStatus(name: string, s: GroupStatus) {
    this.groupStatus.set(name, structuredClone(s));
  }
  async deleteGroupStatus(name: string) {
    this.groupStatus.delete(name);
  }
  async setRoute(route: Route & { owner: RouteOwner }, cutover?: Omit<RouteCutover, 'revision'>) {
    const current = this.routes.get(route.upstream);
    this.checkOwner(route.upstream, route.owner);
    const revision = String(++this.revision);
    const next: Route = structuredClone({ ...route, ...(cutover ? { cutover: { ...cutover, revision } } : current?.cutover ? { cutover: current.cutover } : {}) });
    this.routes.set(route.upstream, next);
    this.routeWrites.push(structuredClone(next));
    return revision;
  }
  async setRoutes(routes: (Route & { owner: RouteOwner })[]) {
    const conflicts: RouteConflictError[] = [];
    for (const r of routes) {
      try {
        await this.setRoute(r);
      } catch (err) {
        if (!(err instanceof RouteConflictError)) throw err;
        conflicts.push(err);
      }
    }
    return conflicts;
  }
  async updateCutover(upstream: string, owner: RouteOwner, cutover: RouteCutover) {
    this.checkOwner(upstream, owner);
    const current = this.routes.get(upstream)!;
    this.routes.set(upstream, { ...current, cutover: structuredClone(cutover) });
    this.revision++;
  }
  private checkOwner(upstream: string, owner: RouteOwner) {
    const current = this.routes.get(upstream)?.owner;
    if (current && (current.env !== owner.env || current.service !== owner.service)) throw new RouteConflictError(upstream, `${current.env}/${current.service}`);
  }
  async deleteRoute(upstream: string, owner?: RouteOwner) {
    const current = this.routes.get(upstream)?.owner;
    if (owner && (current?.env !== owner.env || current.service !== owner.service)) return;
    this.routes.delete(upstream);
  }
  async listProxies() {
    return [...this.proxies.entries()].map(([id, a]) => ({ ...structuredClone(a), id }));
  }
  async getRoutes(upstreams: string[]) {
    return (await this.listRoutes()).filter((r) => upstreams.includes(r.upstream));
  }
  async listRoutes() {
    return [...this.routes.values()].map((r) => structuredClone(r));
  }
  async readPromotion(env: string, service: string) {
    return structuredClone(this.promotions.get(`${env}/${service}`));
  }
  async clearPromotion(env: string, service: string) {
    this.promotions.delete(`${env}/${service}`);
  }
  async clearPromotions(env: string) {
    for (const key of this.promotions.keys()) if (key.startsWith(`${env}/`)) this.promotions.delete(key);
  }
}
