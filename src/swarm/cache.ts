import type { Logger } from 'pino';
import type { SwarmApi, SwarmEvent } from './api.js';
import { LABEL_ENV, LABEL_INSTALLATION, isJobRun } from './labels.js';
import { ENDED_TASK_STATES, type ObservedNode, type ObservedService, type ObservedTask } from './model.js';
import type { DockerServiceSpec } from './service-spec.js';
import { isRelevantEvent } from './event-filter.js';
import { NodeTable, type NodeIndex } from './node-index.js';
import { SharedReads } from './shared-reads.js';
import { WriteEchoes } from './write-echoes.js';
import { abortableSleep } from '../util/abortable-sleep.js';
import { Backoff } from '../util/backoff.js';
import { deepFreeze } from '../util/deep-freeze.js';

/** What the cache tells its listeners after an event: which environment it concerns, if one. */
export interface SwarmChange {
  /** `relist`: the cache listed everything again after the event stream reconnected. */
  type: SwarmEvent['type'] | 'relist';
  action: string;
  /**
   * The environment the change concerns; undefined for a node change other than a claim (it may
   * concern every environment).
   */
  env: string | undefined;
}

export interface SwarmCacheOptions {
  log: Logger;
  /** Injected for tests; milliseconds. */
  now?: () => number;
  /**
   * Tasks of a service that has not settled (a task not yet where Swarm wants it) are listed
   * again when older than this: task state changes on workers raise no event on the manager.
   */
  unsettledTaskMaxAgeMs?: number;
  /**
   * Ids per filtered list call (tasks by service id, nodes or services by id): a Docker
   * `filters` query string has to stay short.
   */
  idsPerList?: number;
  /**
   * The running tasks are listed again this often (one call), announcing the environments whose
   * tasks changed: a task on a worker changing state raises no event on the manager, so only a
   * list tells. 0: never.
   */
  taskResyncEveryMs?: number;
  /**
   * The whole Swarm (nodes, services, tasks) is listed again this often, besides after every
   * events reconnect: a safety net for an event lost without a gap, as client-go's informers
   * relist. Nodes and services raise events on the manager, so this can be rare. 0: never.
   */
  relistEveryMs?: number;
  /** Each period is drawn from ±10 % of its value, so that installations do not list in step (injected for tests). */
  random?: () => number;
  /** Waits between attempts of the first list, and between relists (injected for tests). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Every event received, kept or not (berth_docker_events_total). */
  onEventReceived?: (type: string, kept: boolean) => void;
}

interface TaskEntry {
  tasks: ObservedTask[];
  listedAt: number;
}

/**
 * An informer over the Swarm, in the shape of client-go's shared informer: one full list, then
 * Docker's event stream keeps it current, and a full relist after every gap (events reconnect)
 * and on a long safety period (`relistEveryMs`). The controller reads the Swarm through it, so a
 * converged Swarm costs no API call beyond the event stream, the periodic list of the running
 * tasks (`taskResyncEveryMs`, one call) and the rare relist.
 *
 * Events only mark objects dirty; the next read refreshes the dirty objects, one with an inspect,
 * several of a kind with one filtered list. So a burst of events for one service costs one call,
 * and the listeners, which only enqueue keys, hear of a change at once. Mutations go through to
 * Docker and mark what they changed dirty, so a reconcile that changed the Swarm reads its own
 * writes.
 *
 * Tasks are the exception Swarm forces: a worker's task changing state raises no event on the
 * manager. A service's tasks are therefore listed again when an event or a mutation touched the
 * service, and, while the service has not settled, whenever the list is older than
 * `unsettledTaskMaxAgeMs`. A settled service's tasks are read from the cache, and the periodic
 * list of all running tasks tells which of them changed on a worker.
 */
export class SwarmCache implements SwarmApi {
  private nodes = new NodeTable();
  private services = new Map<string, ObservedService>();
  private tasks = new Map<string, TaskEntry>();
  private readonly dirtyNodes = new Set<string>();
  private readonly dirtyServices = new Set<string>();
  private readonly dirtyTasks = new Set<string>();
  private readonly listeners = new Set<(c: SwarmChange) => void>();
  /** The reads of marked (or, tasks, stale) objects by id, shared by the readers of each kind. */
  private readonly reads: Record<'node' | 'service' | 'tasks', SharedReads>;
  /** When each object was last set or removed outside a relist (`node/ID`, `service/ID`, `tasks/ID`). */
  private readonly touched = new Map<string, number>();
  private seq = 0;
  /**
   * The services again, by environment: a reconcile reads its own environment's services three
   * times, and filtering thousands each time was the largest part of its CPU.
   */
  private servicesByEnv = new Map<string, Map<string, ObservedService>>();
  private readonly now: () => number;
  private readonly echoes: WriteEchoes;
  private readonly unsettledMaxAgeMs: number;
  private synced: Promise<void>;
  private markSynced!: () => void;
  private hasSynced = false;
  /** Lists run one at a time: each compares the cache before and after it. */
  private listing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly swarm: SwarmApi,
    private readonly o: SwarmCacheOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.echoes = new WriteEchoes(this.now);
    this.unsettledMaxAgeMs = o.unsettledTaskMaxAgeMs ?? 1_000;
    const batch = o.idsPerList ?? 100;
    this.reads = {
      node: new SharedReads((ids) => this.readNodes(ids), this.dirtyNodes, batch),
      service: new SharedReads((ids) => this.readServices(ids), this.dirtyServices, batch),
      tasks: new SharedReads((ids) => this.readTasks(ids), this.dirtyTasks, batch),
    };
    this.synced = new Promise((r) => (this.markSynced = r));
  }

  /**
   * Lists, then follows events until `signal` aborts; relists after every reconnect. The first
   * list is retried with capped backoff: Docker may not be up yet. Each run (each term of
   * leadership) starts unsynced from a fresh list: no event was followed in between.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.hasSynced) {
      this.hasSynced = false;
      this.synced = new Promise((r) => (this.markSynced = r));
    }
    const retry = new Backoff(500, 30_000);
    while (!signal.aborted && !this.hasSynced) {
      try {
        // Not serialized: no other list runs before the first is in.
        await this.listAll();
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'listing the Swarm failed; retrying');
        await (this.o.sleep ?? abortableSleep)(retry.next(), signal);
      }
    }
    if (signal.aborted) return;
    await Promise.all([
      this.periodically(this.o.taskResyncEveryMs ?? 0, () => this.relistTasks(), 'periodic list of the tasks failed', signal),
      this.periodically(this.o.relistEveryMs ?? 0, () => this.relist(), 'periodic relist of the Swarm failed', signal),
      this.followEvents(signal),
    ]);
  }

  private async periodically(every: number, list: () => Promise<void>, failed: string, signal: AbortSignal): Promise<void> {
    if (every <= 0) return;
    const sleep = this.o.sleep ?? abortableSleep;
    const random = this.o.random ?? Math.random;
    for (;;) {
      await sleep(Math.round(every * (0.9 + 0.2 * random())), signal);
      if (signal.aborted) return;
      await list().catch((err: unknown) => this.o.log.warn({ err: (err as Error).message }, failed));
    }
  }

  private serialized(list: () => Promise<void>): Promise<void> {
    const next = this.listing.then(list, list);
    this.listing = next.catch(() => undefined);
    return next;
  }

  private async followEvents(signal: AbortSignal): Promise<void> {
    await this.swarm.watchEvents((e) => this.onEvent(e), signal, () => {
      this.o.log.info('docker event stream reconnected: relisting the Swarm cache');
      this.relist().then(
        () => this.notify({ type: 'relist', action: 'reconnect', env: undefined }),
        (err: unknown) => this.o.log.warn({ err: (err as Error).message }, 'relist after reconnect failed'),
      );
    });
  }

  /** Resolves once the first full list is in. */
  waitForSync(): Promise<void> {
    return this.synced;
  }

  isSynced(): boolean {
    return this.hasSynced;
  }

  /** Listeners hear every kept event, after the cache marked what it changed. */
  subscribe(listener: (c: SwarmChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Objects held, for the cache size gauge. */
  size(): { nodes: number; services: number; tasks: number } {
    let tasks = 0;
    for (const e of this.tasks.values()) tasks += e.tasks.length;
    return { nodes: this.nodes.size, services: this.services.size, tasks };
  }

  /**
   * Replaces the whole cache with a fresh list (nodes, berth's services, their tasks). What
   * vanished since the last list is announced to the listeners as a removal, as an informer's
   * relist delivers deletes it missed.
   */
  relist(): Promise<void> {
    return this.serialized(() => this.listAll());
  }

  /**
   * Lists the running tasks again (what no event tells) and announces the environments whose
   * tasks changed. Nodes and services stand as the cache holds them: their events keep them.
   */
  relistTasks(): Promise<void> {
    return this.serialized(async () => {
      const startedDirty = new Set(this.dirtyTasks);
      const since = this.seq;
      const tasks = await this.swarm.listRunningTasks();
      const before = this.tasks;
      this.tasks = merge(this.tasks, this.tasksByService([...this.services.values()], tasks, this.now()), (id) => this.newer('tasks', id, since));
      this.forgetTouched(since, 'tasks/');
      for (const id of startedDirty) this.dirtyTasks.delete(id);
      const envs = new Set<string>();
      for (const [id, s] of this.services) if (tasksChanged(before.get(id), this.tasks.get(id))) envs.add(s.labels[LABEL_ENV]!);
      for (const env of envs) this.notify({ type: 'service', action: 'update', env });
    });
  }

  private async listAll(): Promise<void> {
    const startedDirty = {
      nodes: new Set(this.dirtyNodes),
      services: new Set(this.dirtyServices),
      tasks: new Set(this.dirtyTasks),
    };
    const since = this.seq;
    // Three calls, whatever the size of the Swarm. Tasks: only those meant to run (a service's
    // history of shut-down tasks is five times larger and changes nothing berth decides).
    const [nodes, services, tasks] = await Promise.all([this.swarm.listNodes(), this.swarm.listServices(), this.swarm.listRunningTasks()]);
    const listedAt = this.now();
    const before = { nodes: this.nodes, services: this.services, tasks: this.tasks };
    // An object read again or written while the list was on its way is newer than the list:
    // it keeps what the cache holds for it (present or removed), and was announced already.
    const newer = (kind: string, id: string) => this.newer(kind, id, since);
    const held = new Map([...this.nodes.values()].map((n) => [n.id, n]));
    this.nodes = NodeTable.of(merge(held, new Map(nodes.map((n) => [n.id, deepFreeze(n)])), (id) => newer('node', id)).values());
    this.services = merge(this.services, new Map(services.map((s) => [s.id, deepFreeze(s)])), (id) => newer('service', id));
    this.servicesByEnv = new Map();
    for (const s of this.services.values()) this.indexService(s);
    this.tasks = merge(this.tasks, this.tasksByService(services, tasks, listedAt), (id) => newer('tasks', id));
    this.forgetTouched(since, '');
    // Marks set while the list was on its way may be newer than what it returned: keep them.
    for (const id of startedDirty.nodes) this.dirtyNodes.delete(id);
    for (const id of startedDirty.services) this.dirtyServices.delete(id);
    for (const id of startedDirty.tasks) this.dirtyTasks.delete(id);
    this.echoes.clear();
    const first = !this.hasSynced;
    if (first) {
      this.hasSynced = true;
      this.markSynced();
    } else {
      for (const c of this.changesSince(before)) this.notify(c);
    }
  }

  /**
   * What a relist found changed that no event had told: a service that appeared, vanished or
   * changed version, a service whose running tasks differ (a task that died or moved on a
   * worker raises no event on the manager), a node that changed. These, not every key, are
   * what a relist enqueues, as an informer's resync delivers only what changed.
   */
  private changesSince(before: { nodes: NodeIndex; services: Map<string, ObservedService>; tasks: Map<string, TaskEntry> }): SwarmChange[] {
    const out: SwarmChange[] = [];
    const envs = new Set<string>();
    for (const id of new Set([...before.services.keys(), ...this.services.keys()])) {
      const a = before.services.get(id);
      const b = this.services.get(id);
      const env = (b ?? a)!.labels[LABEL_ENV];
      if (!env) continue;
      if (!a || !b) out.push({ type: 'service', action: b ? 'create' : 'remove', env });
      else if (a.version !== b.version || tasksChanged(before.tasks.get(id), this.tasks.get(id))) envs.add(env);
    }
    for (const env of envs) out.push({ type: 'service', action: 'update', env });
    for (const id of new Set([...idsOf(before.nodes), ...idsOf(this.nodes)])) {
      const a = before.nodes.get(id);
      const b = this.nodes.get(id);
      if (a && b && sameExceptClaim(a, b)) {
        for (const env of new Set([a.labels[LABEL_ENV], b.labels[LABEL_ENV]])) if (env && a.labels[LABEL_ENV] !== b.labels[LABEL_ENV]) out.push({ type: 'node', action: 'update', env });
      } else out.push({ type: 'node', action: a ? (b ? 'update' : 'remove') : 'create', env: undefined });
    }
    return out;
  }

  private touch(kind: 'node' | 'service' | 'tasks', id: string): void {
    this.touched.set(`${kind}/${id}`, ++this.seq);
  }

  /** Whether the object was read again or written after the list that began at `since` was asked for. */
  private newer(kind: string, id: string, since: number): boolean {
    return (this.touched.get(`${kind}/${id}`) ?? 0) > since;
  }

  /** Forgets the touches (of keys starting with `prefix`) a list begun at `since` has overtaken. */
  private forgetTouched(since: number, prefix: string): void {
    for (const [key, seq] of this.touched) if (seq <= since && key.startsWith(prefix)) this.touched.delete(key);
  }

  /**
   * The listed running tasks by service. A job run's task is meant to complete, not to run: the
   * list leaves it out. What the cache holds for it stands (it is listed again while unsettled),
   * else it is listed on its next read.
   */
  private tasksByService(services: ObservedService[], tasks: ObservedTask[], listedAt: number): Map<string, TaskEntry> {
    const listed = groupTasks(services, tasks, listedAt);
    for (const s of services) {
      if (!isJobRun(s)) continue;
      const held = this.tasks.get(s.id);
      if (held) listed.set(s.id, held);
      else listed.delete(s.id);
    }
    return listed;
  }

  private onEvent(e: SwarmEvent): void {
    const kept = isRelevantEvent(e);
    this.o.onEventReceived?.(e.type, kept);
    if (!kept) return;
    let env: string | undefined;
    if (e.type === 'node') {
      const echoed = this.echoes.echo(`node/${e.id}`, this.dirtyNodes.has(e.id));
      if (echoed) {
        for (const env of echoed) this.notify({ type: 'node', action: e.action, env });
        return;
      }
      const before = this.nodes.get(e.id);
      this.echoes.afterWrites(`node/${e.id}`, () => {
        this.dirtyNodes.add(e.id);
        void this.announceNodeChange(e, before);
      });
      return;
    } else if (e.type === 'service') {
      const key = `service/${e.id}`;
      if (!this.echoes.echo(key, this.dirtyServices.has(e.id))) {
        // Read once, after the cache's own write or create on its way, not once before it too.
        const markStale = () => this.markServiceStale(e.id);
        if (this.services.has(e.id)) this.echoes.afterWrites(key, markStale);
        else this.echoes.afterCreates(key, markStale);
      }
      env = this.services.get(e.id)?.labels[LABEL_ENV] ?? envOfServiceName(e.attributes.name);
    } else {
      // A container carries berth's labels and its service's id; a task event, its service's name.
      const serviceId = e.attributes['com.docker.swarm.service.id'];
      if (serviceId) this.dirtyTasks.add(serviceId);
      env = e.attributes[LABEL_ENV] ?? (serviceId ? this.services.get(serviceId)?.labels[LABEL_ENV] : undefined);
      if (e.type === 'task') env ??= envOfServiceName(e.attributes.name);
      if (!env) return;
    }
    this.notify({ type: e.type, action: e.action, env });
  }

  /**
   * A node event is announced once the node is read again, with what changed: when only berth's
   * own claim labels moved (environment, installation), it concerns the environment that lost
   * the node and the one that took it; anything else (state, availability, the labels ops set)
   * may concern every environment (env undefined). Claims are most of the node events, and
   * fanning each out to every environment would make a cold start of N environments cost N²
   * reconciles.
   */
  private async announceNodeChange(e: SwarmEvent, before: ObservedNode | undefined): Promise<void> {
    // The events that arrived together (one chunk of the stream) are all marked before the
    // first of them reads: one list reads them all, not an inspect for the first and a list for
    // the rest.
    await Promise.resolve();
    try {
      await this.refreshDirty('node');
    } catch {
      this.notify({ type: 'node', action: e.action, env: undefined });
      return;
    }
    const after = this.nodes.get(e.id);
    if (before && after && sameExceptClaim(before, after)) {
      for (const env of new Set([before.labels[LABEL_ENV], after.labels[LABEL_ENV]])) {
        if (env) this.notify({ type: 'node', action: e.action, env });
      }
      return;
    }
    this.notify({ type: 'node', action: e.action, env: undefined });
  }

  private notify(c: SwarmChange): void {
    for (const l of this.listeners) {
      try {
        l(c);
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'swarm cache listener failed');
      }
    }
  }

  // ---- reads ------------------------------------------------------------------------------

  async listNodes(): Promise<ObservedNode[]> {
    await this.synced;
    await this.refreshDirty('node');
    return [...this.nodes.values()];
  }

  /** The cache's own index, kept current as events arrive: a view, not a copy. */
  async nodeIndex(): Promise<NodeIndex> {
    await this.synced;
    await this.refreshDirty('node');
    return this.nodes;
  }

  async listServices(env?: string): Promise<ObservedService[]> {
    await this.synced;
    await this.refreshDirty('service');
    if (!env) return [...this.services.values()];
    return [...(this.servicesByEnv.get(env)?.values() ?? [])];
  }

  async inspectService(id: string): Promise<ObservedService | undefined> {
    await this.synced;
    // Also when not marked: its mark may have been taken by a read still under way.
    await this.refreshDirty('service', id);
    const s = this.services.get(id);
    return s;
  }

  async listRunningTasks(): Promise<ObservedTask[]> {
    await this.synced;
    return [...this.tasks.values()].flatMap((e) => e.tasks.filter((t) => t.desiredState === 'running'));
  }

  /**
   * The tasks of the services stale when asked for are read by a call that begins after, shared
   * with other readers (see SharedReads): never an older answer than a call of this read's own.
   * As in `refreshDirty`, the calls on their way for these services are waited for first, and
   * what they leave stale (marked again meanwhile, or failed) is read too.
   */
  async listTasks(serviceIds: string[]): Promise<ObservedTask[]> {
    await this.synced;
    const stale = this.staleTasks(serviceIds);
    await this.reads.tasks.read(serviceIds, () => [...stale, ...this.staleTasks(serviceIds)]);
    return serviceIds.flatMap((id) => this.tasks.get(id)?.tasks ?? []);
  }

  /** The services whose tasks are to be listed again: marked, never listed, or unsettled and older than the max age. */
  private staleTasks(serviceIds: string[]): string[] {
    const now = this.now();
    return serviceIds.filter((id) => {
      if (this.dirtyTasks.has(id)) return true;
      const entry = this.tasks.get(id);
      if (!entry) return this.services.has(id);
      return !isSettled(this.services.get(id), entry.tasks) && now - entry.listedAt >= this.unsettledMaxAgeMs;
    });
  }

  // ---- writes: through to Docker, then what they changed is read again ------------------------

  async updateNodeLabels(id: string, version: number, labels: Record<string, string>): Promise<void> {
    // A claim's echo concerns the environment that held the node and the one that holds it now.
    const envs = [this.nodes.get(id)?.labels[LABEL_ENV], labels[LABEL_ENV]];
    await this.write(`node/${id}`, () => this.swarm.updateNodeLabels(id, version, labels), envs, () => this.dirtyNodes.add(id));
  }

  async createService(spec: DockerServiceSpec): Promise<string> {
    this.echoes.beginCreate();
    let id: string | undefined;
    try {
      id = await this.swarm.createService(spec);
      this.dirtyServices.add(id);
      this.dirtyTasks.add(id);
      return id;
    } finally {
      this.echoes.endCreate(id === undefined ? undefined : `service/${id}`);
    }
  }

  updateService(id: string, version: number, spec: DockerServiceSpec): Promise<void> {
    return this.write(`service/${id}`, () => this.swarm.updateService(id, version, spec), [], () => this.markServiceStale(id));
  }

  scaleService(id: string, version: number, replicas: number): Promise<void> {
    return this.write(`service/${id}`, () => this.swarm.scaleService(id, version, replicas), [], () => this.markServiceStale(id));
  }

  /** A write through to Docker; what it touched is marked stale, failed or not, and its echo expected when it succeeded. */
  private async write(key: string, call: () => Promise<void>, envs: (string | undefined)[], markStale: () => void): Promise<void> {
    this.echoes.begin(key);
    let succeeded = false;
    try {
      await call();
      succeeded = true;
    } finally {
      markStale();
      this.echoes.end(key, succeeded, envs);
    }
  }

  private markServiceStale(id: string): void {
    this.dirtyServices.add(id);
    this.dirtyTasks.add(id);
  }

  async removeService(id: string): Promise<void> {
    await this.write(`service/${id}`, () => this.swarm.removeService(id), [], () => undefined);
    this.dropService(id);
    this.tasks.delete(id);
    this.touch('service', id);
    this.touch('tasks', id);
    this.dirtyServices.delete(id);
    this.dirtyTasks.delete(id);
  }

  watchEvents(onEvent: (e: SwarmEvent) => void, signal: AbortSignal, onReconnect?: () => void): Promise<void> {
    return this.swarm.watchEvents(onEvent, signal, onReconnect);
  }

  /** Through to Docker (the controller reads nodes from the cache). */
  inspectNode(id: string): Promise<ObservedNode | undefined> {
    return this.swarm.inspectNode(id);
  }

  /** Through to Docker, as `inspectNode`. */
  listNodesById(ids: string[]): Promise<ObservedNode[]> {
    return this.swarm.listNodesById(ids);
  }

  /** Through to Docker: foreign services included, which the cache does not hold. */
  listServicesById(ids: string[]): Promise<ObservedService[]> {
    return this.swarm.listServicesById(ids);
  }

  private indexService(s: ObservedService): void {
    const env = s.labels[LABEL_ENV]!;
    let mine = this.servicesByEnv.get(env);
    if (!mine) this.servicesByEnv.set(env, (mine = new Map()));
    mine.set(s.id, s);
  }

  private dropService(id: string): void {
    const s = this.services.get(id);
    if (!s) return;
    this.services.delete(id);
    const mine = this.servicesByEnv.get(s.labels[LABEL_ENV]!);
    mine?.delete(id);
    if (mine?.size === 0) this.servicesByEnv.delete(s.labels[LABEL_ENV]!);
  }

  // ---- refreshing ---------------------------------------------------------------------------

  /**
   * Refreshes every object of `kind` marked dirty (only `only`, when given); two readers needing
   * the same object share one call. The refreshes other readers started are waited for first:
   * each took the mark of an object that changed, and until it answers the cache holds the value
   * it replaces. A read that went past them returned, say, a service's replicas from before a
   * hand scale whose event had enqueued that very read, and nothing enqueued it again. Then every
   * object still marked is read: its mark came after whatever read of it was under way.
   *
   * Several marked objects are read with one filtered list per `idsPerList` ids instead of one
   * inspect each (a cold start marks thousands at once); one is read with an inspect. Every id of
   * a batch shares the batch's call, and a failed call marks all its ids dirty again. Objects
   * marked while a read of the kind is on its way go together in the next (see SharedReads).
   */
  private async refreshDirty(kind: 'node' | 'service', only?: string): Promise<void> {
    const dirty = kind === 'node' ? this.dirtyNodes : this.dirtyServices;
    await this.reads[kind].read(only === undefined ? undefined : [only], () => (only === undefined ? [...dirty] : dirty.has(only) ? [only] : []));
  }

  private async readNodes(ids: string[]): Promise<void> {
    const found = await readByIds(ids, (id) => this.swarm.inspectNode(id), (several) => this.swarm.listNodesById(several));
    for (const id of ids) {
      const node = found.get(id);
      if (node) this.nodes.set(deepFreeze(node));
      else this.nodes.delete(id);
      this.touch('node', id);
    }
  }

  private async readServices(ids: string[]): Promise<void> {
    const found = await readByIds(ids, (id) => this.swarm.inspectService(id), (several) => this.swarm.listServicesById(several));
    for (const id of ids) {
      const s = found.get(id);
      // Only berth's services are held: a foreign one (no berth.env label) is none of its business.
      if (s && LABEL_ENV in s.labels) {
        this.dropService(id);
        this.services.set(id, deepFreeze(s));
        this.indexService(s);
      } else {
        this.dropService(id);
        this.tasks.delete(id);
        this.touch('tasks', id);
      }
      this.touch('service', id);
    }
  }

  private async readTasks(serviceIds: string[]): Promise<void> {
    const listedAt = this.now();
    const byService = groupTasks(serviceIds.map((id) => ({ id })), await this.swarm.listTasks(serviceIds), listedAt);
    for (const [id, entry] of byService) {
      this.tasks.set(id, entry);
      this.touch('tasks', id);
    }
  }
}

/**
 * The objects of `ids` that exist, by id: one id is inspected (a reaction's read stays one
 * call), several are listed with one call. Docker matches a list's ids as prefixes, so what the
 * answer holds beyond `ids` is left out; an id absent from the answer is gone, as an inspect's
 * 404 says.
 */
async function readByIds<T extends { id: string }>(ids: string[], inspect: (id: string) => Promise<T | undefined>, list: (ids: string[]) => Promise<T[]>): Promise<Map<string, T>> {
  const found = ids.length === 1 ? [await inspect(ids[0]!)] : await list(ids);
  const wanted = new Set(ids);
  const out = new Map<string, T>();
  for (const o of found) if (o && wanted.has(o.id)) out.set(o.id, o);
  return out;
}

/**
 * A job's run has settled when its task ended. A service has settled when exactly its replica count runs and nothing else is still meant to
 * change: no task on its way up, none on its way down.
 */
export function isSettled(service: ObservedService | undefined, tasks: ObservedTask[]): boolean {
  if (!service) return true;
  // A job's run has settled once its task ended; Swarm raises no event for a task on a worker.
  if (isJobRun(service)) return tasks.length > 0 && tasks.every((t) => ENDED_TASK_STATES.has(t.state));
  let running = 0;
  for (const t of tasks) {
    if (t.desiredState === 'running') {
      if (t.state !== 'running') return false;
      running++;
    } else if (t.state === 'running') return false;
  }
  return running === service.replicas;
}

function groupTasks(services: { id: string }[], tasks: ObservedTask[], listedAt: number): Map<string, TaskEntry> {
  const out = new Map<string, TaskEntry>(services.map((s) => [s.id, { tasks: [], listedAt }]));
  for (const t of tasks) out.get(t.serviceId)?.tasks.push(deepFreeze(t));
  return out;
}

/** Whether a service's running tasks differ between two lists: which tasks, where, in which state. */
function tasksChanged(a: TaskEntry | undefined, b: TaskEntry | undefined): boolean {
  if (a === b || (a && b && sameObjects(a.tasks, b.tasks))) return false;
  return taskSignature(a) !== taskSignature(b);
}

/** The same task objects in the same order: a list reuses the object of a task whose version did not change. */
function sameObjects(a: ObservedTask[], b: ObservedTask[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function taskSignature(entry: TaskEntry | undefined): string {
  return (entry?.tasks ?? [])
    .filter((t) => t.desiredState === 'running')
    .map((t) => `${t.id}:${t.nodeId}:${t.state}`)
    .sort()
    .join(',');
}

/** `listed`, except where `keep(id)`: there what `current` holds (or its absence) stands. */
function merge<V>(current: Map<string, V>, listed: Map<string, V>, keep: (id: string) => boolean): Map<string, V> {
  const out = new Map<string, V>();
  for (const [id, v] of listed) if (!keep(id)) out.set(id, v);
  for (const [id, v] of current) if (keep(id)) out.set(id, v);
  return out;
}

/** Two reads of a node that differ at most in berth's claim labels (and the version they raised). */
function sameExceptClaim(a: ObservedNode, b: ObservedNode): boolean {
  if (a.hostname !== b.hostname || a.addr !== b.addr || a.role !== b.role || a.state !== b.state || a.availability !== b.availability) return false;
  const keys = (n: ObservedNode) => Object.keys(n.labels).filter((k) => k !== LABEL_ENV && k !== LABEL_INSTALLATION);
  const ka = keys(a);
  return ka.length === keys(b).length && ka.every((k) => a.labels[k] === b.labels[k]);
}

function* idsOf(nodes: NodeIndex): Iterable<string> {
  for (const n of nodes.values()) yield n.id;
}

/** `<env>_<service>[_<color>]`; environment names have no `_`. */
function envOfServiceName(name: string | undefined): string | undefined {
  if (!name || !name.includes('_')) return undefined;
  return name.split('_')[0] || undefined;
}
