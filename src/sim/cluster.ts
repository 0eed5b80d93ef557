import type { Clock } from '../runtime/clock.js';
import { labelEquality, satisfies, type Constraint } from './constraints.js';
import { invalidArgument, notFound, outOfSequence, EngineError } from './errors.js';
import type { DockerEvent, EventBus } from './events.js';
import {
  isTerminal,
  newContainerId,
  newObjectId,
  type Json,
  type NodeAvailability,
  type NodeRole,
  type PublishedPort,
  type SimNode,
  type SimService,
  type SimTask,
  type TaskState,
} from './model.js';
import { placeTasks } from './scheduler.js';
import { modeOf, normaliseServiceSpec, placementOf, replicasOf, taskIdentity } from './spec.js';

/*
 * The simulated Swarm: the store of nodes, services and tasks, the orchestrator that keeps each
 * service's tasks matching its spec (slots, scaling, rolling replacement, rescheduling off nodes
 * that no longer qualify) and the task life cycle in time. Scheduling is asynchronous as in
 * Swarm: new tasks wait for the next scheduling pass (a zero-delay timer coalescing all
 * changes), so a burst of creates is placed in one pass.
 */

/** Which container events the stream carries: see docs/sim.md. */
export type ContainerEventsScope = 'manager' | 'all' | 'none';

export interface ClusterOptions {
  clock: Clock;
  events: EventBus;
  nodes: number;
  /** Labels every node carries, besides `zone=a|b|c` round robin. */
  nodeLabels?: Record<string, string>;
  /** From assigned to running (half of it to starting, when the container is created). */
  taskStartMs?: number;
  /** From shutdown requested to shut down. */
  taskStopMs?: number;
  /** Tasks kept per slot, current one included (Swarm's TaskHistoryRetentionLimit, default 5). */
  taskHistory?: number;
  containerEvents?: ContainerEventsScope;
  random?: () => number;
}

export const ZONES = ['a', 'b', 'c'] as const;
const ENGINE_VERSION = '20.10.24';
const EPHEMERAL_PORTS = { first: 32768, last: 60999 } as const;
const INGRESS_PORTS_FIRST = 30000;

export class SimCluster {
  readonly id: string;
  readonly createdAt: number;
  readonly engineVersion = ENGINE_VERSION;
  readonly nodes: SimNode[] = [];
  private readonly nodesById = new Map<string, SimNode>();
  /**
   * The nodes by label and value (folded to lower case), for the labels a placement constraint
   * has asked about: a placement looks at the few nodes holding its constraint's label rather
   * than testing thousands. Built on first use, kept as node labels change.
   */
  private readonly nodesByLabel = new Map<string, Map<string, Set<SimNode>>>();
  private readonly nodeOrder = new Map<SimNode, number>();
  /** Global services run on every fitting node: a node update concerns them all. */
  private globalServices = 0;
  private readonly services = new Map<string, SimService>();
  private readonly serviceIdByName = new Map<string, string>();
  private readonly tasks = new Map<string, SimTask>();
  private readonly tasksByService = new Map<string, Set<SimTask>>();
  /** Tasks meant to run on each node: the scheduler's load figure. */
  private readonly load = new Map<string, number>();
  private readonly hostPortsInUse = new Map<string, Set<number>>();
  private readonly nextHostPort = new Map<string, number>();
  private readonly ingressPorts = new Set<number>();
  /** Services with tasks to place in the next pass; `retryPending` adds those still waiting. */
  private readonly toSchedule = new Set<string>();
  private readonly waiting = new Set<string>();
  private retryPending = false;
  private passTimer: unknown;
  /** The store index: every write takes the next one, as Swarm's raft index does. */
  private index = 0;
  private readonly o: Required<Omit<ClusterOptions, 'nodeLabels'>>;

  constructor(opts: ClusterOptions) {
    this.o = {
      taskStartMs: 100,
      taskStopMs: 50,
      taskHistory: 5,
      containerEvents: 'manager',
      random: Math.random,
      ...opts,
    };
    this.createdAt = this.o.clock.now();
    this.id = newObjectId(this.o.random);
    for (let i = 1; i <= opts.nodes; i++) {
      const node: SimNode = {
        id: newObjectId(this.o.random),
        version: this.nextIndex(),
        createdAt: this.createdAt,
        updatedAt: this.createdAt,
        hostname: `sim-${i}`,
        addr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        role: i === 1 ? 'manager' : 'worker',
        availability: 'active',
        labels: { ...(opts.nodeLabels ?? {}), zone: ZONES[(i - 1) % ZONES.length]! },
        state: 'ready',
        leader: i === 1,
        available: true,
        specName: '',
      };
      this.nodeOrder.set(node, this.nodes.length);
      this.nodes.push(node);
      this.nodesById.set(node.id, node);
    }
  }

  /** The node whose API this is (sim-1, the leader). */
  get self(): SimNode | undefined {
    return this.nodes[0];
  }

  get storeIndex(): number {
    return this.index;
  }

  // ---- reads

  node(ref: string): SimNode {
    const byId = this.nodesById.get(ref);
    if (byId) return byId;
    const byName = this.nodes.filter((n) => n.hostname === ref || n.specName === ref);
    if (byName.length === 1) return byName[0]!;
    const byPrefix = this.nodes.filter((n) => n.id.startsWith(ref));
    if (byPrefix.length === 1) return byPrefix[0]!;
    if (byName.length > 1 || byPrefix.length > 1) throw new EngineError(400, `node ${ref} is ambiguous (${byName.length || byPrefix.length} matches found)`);
    throw notFound('node', ref);
  }

  nodeById(id: string): SimNode | undefined {
    return this.nodesById.get(id);
  }

  listServices(): SimService[] {
    return [...this.services.values()];
  }

  /** By id, then name, then unique id prefix, as the daemon resolves a service reference. */
  service(ref: string): SimService {
    const found = this.services.get(ref) ?? this.services.get(this.serviceIdByName.get(ref) ?? '');
    if (found) return found;
    const byPrefix = [...this.services.values()].filter((s) => s.id.startsWith(ref));
    if (byPrefix.length === 1) return byPrefix[0]!;
    if (byPrefix.length > 1) throw new EngineError(400, `service ${ref} is ambiguous (${byPrefix.length} matches found)`);
    throw notFound('service', ref);
  }

  serviceById(id: string): SimService | undefined {
    return this.services.get(id);
  }

  listTasks(): Iterable<SimTask> {
    return this.tasks.values();
  }

  tasksOf(serviceId: string): Iterable<SimTask> {
    return this.tasksByService.get(serviceId) ?? [];
  }

  task(id: string): SimTask {
    const t = this.tasks.get(id);
    if (!t) throw notFound('task', id);
    return t;
  }

  get taskCount(): number {
    return this.tasks.size;
  }

  /** ServiceStatus (`GET /services?status=true`): tasks running and tasks wanted. */
  serviceStatus(svc: SimService): { RunningTasks: number; DesiredTasks: number; CompletedTasks: number } {
    let running = 0;
    let desired = 0;
    for (const t of this.tasksOf(svc.id)) {
      if (t.desiredState !== 'running') continue;
      desired++;
      if (t.state === 'running') running++;
    }
    return { RunningTasks: running, DesiredTasks: modeOf(svc.spec) === 'global' ? desired : replicasOf(svc.spec), CompletedTasks: 0 };
  }

  // ---- writes

  updateNode(ref: string, version: number, spec: Json): SimNode {
    const node = this.node(ref);
    if (version !== node.version) throw outOfSequence();
    const role: NodeRole = spec.Role ?? node.role;
    const availability: NodeAvailability = spec.Availability ?? node.availability;
    if (role !== 'manager' && role !== 'worker') throw invalidArgument(`invalid role ${String(role)}`);
    if (!['active', 'pause', 'drain'].includes(availability)) throw invalidArgument(`invalid availability ${String(availability)}`);
    const attributes: Record<string, string> = { name: node.specName || node.hostname };
    if (availability !== node.availability) Object.assign(attributes, { 'availability.old': node.availability, 'availability.new': availability });
    if (role !== node.role) Object.assign(attributes, { 'role.old': node.role, 'role.new': role });
    const labelsBefore = node.labels;
    node.labels = { ...(spec.Labels ?? {}) };
    this.reindexLabels(node, labelsBefore);
    node.role = role;
    node.availability = availability;
    node.available = node.state === 'ready' && availability === 'active';
    node.specName = typeof spec.Name === 'string' ? spec.Name : '';
    node.version = this.nextIndex();
    node.updatedAt = this.now();
    this.emitCluster('node', 'update', node.id, attributes, node.updatedAt);
    // Tasks whose constraints no longer hold there, or on a drained node, move; pending ones may fit now.
    // Most updates are claims of nodes that run nothing yet: their load spares reading every task
    // (and, with no global service, every service).
    const affected = new Set<string>();
    if ((this.load.get(node.id) ?? 0) > 0) for (const t of this.tasks.values()) if (t.nodeId === node.id && t.desiredState === 'running') affected.add(t.serviceId);
    if (affected.size > 0 || this.globalServices > 0) {
      for (const svc of this.services.values()) if (affected.has(svc.id) || modeOf(svc.spec) === 'global') this.reconcile(svc);
    }
    this.retryPending = true;
    this.requestPass();
    return node;
  }

  createService(input: unknown): SimService {
    const spec = normaliseServiceSpec(input);
    if (this.serviceIdByName.has(spec.Name)) {
      throw new EngineError(409, `rpc error: code = AlreadyExists desc = name conflicts with an existing object: service ${spec.Name} already exists`);
    }
    const now = this.now();
    const svc: SimService = {
      id: newObjectId(this.o.random),
      version: this.nextIndex(),
      createdAt: now,
      updatedAt: now,
      spec,
      specVersion: 1,
      endpointPorts: [],
    };
    svc.endpointPorts = this.allocateIngress(spec, []);
    this.services.set(svc.id, svc);
    if (modeOf(spec) === 'global') this.globalServices++;
    this.serviceIdByName.set(spec.Name, svc.id);
    this.tasksByService.set(svc.id, new Set());
    this.emitCluster('service', 'create', svc.id, { name: spec.Name }, now);
    this.reconcile(svc);
    return svc;
  }

  updateService(ref: string, version: number, input: unknown, rollback = false): SimService {
    const svc = this.service(ref);
    if (version !== svc.version) throw outOfSequence();
    if (rollback && !svc.previousSpec) throw invalidArgument(`service ${svc.id} does not have a previous spec`);
    const spec = normaliseServiceSpec(rollback ? svc.previousSpec : input);
    const old = svc.spec;
    if (spec.Name !== old.Name) throw invalidArgument('renaming services is not supported');
    if (modeOf(spec) !== modeOf(old)) throw invalidArgument('service mode change is not allowed');
    const replaced = taskIdentity(spec) !== taskIdentity(old);
    const attributes: Record<string, string> = { name: spec.Name };
    const [imageOld, imageNew] = [old.TaskTemplate.ContainerSpec.Image, spec.TaskTemplate.ContainerSpec.Image];
    if (imageOld !== imageNew) Object.assign(attributes, { 'image.old': imageOld, 'image.new': imageNew });
    if (modeOf(spec) === 'replicated' && replicasOf(spec) !== replicasOf(old)) {
      Object.assign(attributes, { 'replicas.old': String(replicasOf(old)), 'replicas.new': String(replicasOf(spec)) });
    }
    svc.previousSpec = old;
    svc.spec = spec;
    svc.version = this.nextIndex();
    svc.updatedAt = this.now();
    if (replaced) {
      svc.specVersion++;
      svc.endpointPorts = this.allocateIngress(spec, svc.endpointPorts);
    }
    this.emitCluster('service', 'update', svc.id, attributes, svc.updatedAt);
    if (replaced && this.tasksByService.get(svc.id)!.size > 0) {
      this.setUpdateState(svc, rollback ? 'rollback_started' : 'updating', rollback ? 'manually requested rollback' : 'update in progress');
    }
    this.reconcile(svc);
    return svc;
  }

  removeService(ref: string): void {
    const svc = this.service(ref);
    this.services.delete(svc.id);
    if (modeOf(svc.spec) === 'global') this.globalServices--;
    this.serviceIdByName.delete(svc.spec.Name);
    this.toSchedule.delete(svc.id);
    this.waiting.delete(svc.id);
    for (const p of svc.endpointPorts) this.ingressPorts.delete(p.PublishedPort);
    this.emitCluster('service', 'remove', svc.id, { name: svc.spec.Name }, this.now());
    for (const t of [...this.tasksOf(svc.id)]) this.shutDown(t, 'remove');
    if (this.tasksByService.get(svc.id)?.size === 0) this.tasksByService.delete(svc.id);
  }

  // ---- orchestration

  /** Makes the service's tasks match its spec; new tasks wait for the next scheduling pass. */
  private reconcile(svc: SimService): void {
    const placement = placementOf(svc.spec);
    const live = [...this.tasksOf(svc.id)].filter((t) => t.desiredState === 'running');
    for (const t of live) {
      if (t.nodeId && !this.keeps(t.nodeId, placement.constraints)) this.shutDown(t, 'shutdown');
    }
    if (modeOf(svc.spec) === 'global') this.reconcileGlobal(svc, placement.constraints);
    else this.reconcileReplicated(svc);
    this.checkUpdateDone(svc);
    this.requestPass();
  }

  private keeps(nodeId: string, constraints: readonly Constraint[]): boolean {
    const node = this.nodesById.get(nodeId);
    return !!node && node.state === 'ready' && node.availability !== 'drain' && satisfies(node, constraints);
  }

  private reconcileReplicated(svc: SimService): void {
    const bySlot = this.liveBySlot(svc, (t) => t.slot);
    for (const [slot, tasks] of bySlot) this.replaceOutdated(svc, tasks, () => this.newTask(svc, slot, ''));
    const want = replicasOf(svc.spec);
    const slots = [...this.liveBySlot(svc, (t) => t.slot).entries()];
    if (slots.length > want) {
      // Swarm removes tasks that are not running first, then those on the most loaded nodes.
      const rank = ([slot, ts]: [number, SimTask[]]) => [ts.some((t) => t.state === 'running') ? 1 : 0, -Math.max(...ts.map((t) => this.load.get(t.nodeId) ?? 0)), -slot];
      slots.sort((a, b) => compareTuples(rank(a), rank(b)));
      for (const [, ts] of slots.slice(0, slots.length - want)) for (const t of ts) this.shutDown(t, 'shutdown');
    }
    const used = new Set(slots.map(([s]) => s));
    for (let slot = 1, n = slots.length; n < want; slot++) {
      if (used.has(slot)) continue;
      this.newTask(svc, slot, '');
      n++;
    }
  }

  private reconcileGlobal(svc: SimService, constraints: readonly Constraint[]): void {
    const byNode = this.liveBySlot(svc, (t) => t.nodeId);
    for (const [nodeId, tasks] of byNode) this.replaceOutdated(svc, tasks, () => this.newTask(svc, 0, nodeId));
    for (const node of this.nodes) {
      if (node.available && satisfies(node, constraints) && !byNode.has(node.id)) this.newTask(svc, 0, node.id);
    }
  }

  private liveBySlot<K>(svc: SimService, keyOf: (t: SimTask) => K): Map<K, SimTask[]> {
    const out = new Map<K, SimTask[]>();
    for (const t of this.tasksOf(svc.id)) {
      if (t.desiredState !== 'running') continue;
      const k = keyOf(t);
      const list = out.get(k);
      if (list) list.push(t);
      else out.set(k, [t]);
    }
    return out;
  }

  /**
   * A slot without a task of the current spec gets one. Start-first keeps the old task while it
   * runs (it is shut down when the new one is running); stop-first shuts it down now.
   */
  private replaceOutdated(svc: SimService, tasks: SimTask[], spawn: () => void): void {
    if (tasks.some((t) => t.specVersion === svc.specVersion)) return;
    const startFirst = svc.spec.UpdateConfig?.Order === 'start-first';
    for (const t of tasks) if (!startFirst || t.state !== 'running') this.shutDown(t, 'shutdown');
    spawn();
  }

  private newTask(svc: SimService, slot: number, nodeId: string): void {
    const now = this.now();
    const t: SimTask = {
      id: newObjectId(this.o.random),
      version: this.nextIndex(),
      createdAt: now,
      updatedAt: now,
      serviceId: svc.id,
      serviceName: svc.spec.Name,
      slot,
      nodeId: '',
      spec: svc.spec.TaskTemplate,
      specVersion: svc.specVersion,
      desiredState: 'running',
      state: 'new',
      stateAt: now,
      message: 'created',
      hostPorts: [],
    };
    this.tasks.set(t.id, t);
    this.tasksByService.get(svc.id)!.add(t);
    // A global task is bound to its node from the start; the pass only checks it still fits.
    if (nodeId) t.nodeId = nodeId;
    this.toSchedule.add(svc.id);
  }

  // ---- scheduling

  private requestPass(): void {
    if (this.passTimer !== undefined) return;
    this.passTimer = this.o.clock.setTimer(() => {
      this.passTimer = undefined;
      this.schedulingPass();
    }, 0);
  }

  private schedulingPass(): void {
    const ids = new Set(this.toSchedule);
    if (this.retryPending) for (const id of this.waiting) ids.add(id);
    this.toSchedule.clear();
    this.retryPending = false;
    for (const id of ids) {
      const svc = this.services.get(id);
      if (svc) this.schedule(svc);
    }
  }

  private schedule(svc: SimService): void {
    const unplaced: SimTask[] = [];
    const globalTasks: SimTask[] = [];
    const mine = new Map<string, number>();
    for (const t of this.tasksOf(svc.id)) {
      if (t.desiredState !== 'running') continue;
      if (t.state === 'new' || t.state === 'pending') (t.nodeId ? globalTasks : unplaced).push(t);
      else mine.set(t.nodeId, (mine.get(t.nodeId) ?? 0) + 1);
    }
    const placement = placementOf(svc.spec);
    for (const t of globalTasks) this.assign(svc, t, t.nodeId);
    unplaced.sort((a, b) => a.slot - b.slot);
    const occupancy = {
      serviceTasks: (n: string) => mine.get(n) ?? 0,
      totalTasks: (n: string) => this.load.get(n) ?? 0,
      hostPortsInUse: (n: string) => this.hostPortsInUse.get(n),
    };
    // The nodes outside the candidates fail a constraint: the placement among the candidates is
    // the placement among all. Only the reason a task stays pending counts every node.
    const candidates = this.candidatesFor(placement.constraints);
    let result = placeTasks(candidates, placement, occupancy, unplaced.length);
    if (result.unplacedReason !== undefined && candidates !== this.nodes) result = placeTasks(this.nodes, placement, occupancy, unplaced.length);
    result.nodeIds.forEach((nodeId, i) => this.assign(svc, unplaced[i]!, nodeId));
    const left = unplaced.slice(result.nodeIds.length);
    for (const t of left) {
      if (t.state !== 'pending' || t.err !== result.unplacedReason) {
        t.err = result.unplacedReason;
        this.setState(t, 'pending', 'pending task scheduling');
      }
    }
    if (left.length) this.waiting.add(svc.id);
    else this.waiting.delete(svc.id);
  }

  /** The nodes that hold the label of the most selective `node.labels.<k>==<v>` constraint, in node order; else all. */
  private candidatesFor(constraints: readonly Constraint[]): readonly SimNode[] {
    let fewest: Set<SimNode> | undefined;
    for (const c of constraints) {
      const eq = labelEquality(c);
      if (!eq) continue;
      const holding = this.labelIndex(eq.label).get(eq.lowerValue) ?? new Set<SimNode>();
      if (!fewest || holding.size < fewest.size) fewest = holding;
    }
    if (!fewest) return this.nodes;
    return [...fewest].sort((a, b) => this.nodeOrder.get(a)! - this.nodeOrder.get(b)!);
  }

  private labelIndex(label: string): Map<string, Set<SimNode>> {
    let byValue = this.nodesByLabel.get(label);
    if (!byValue) {
      this.nodesByLabel.set(label, (byValue = new Map()));
      for (const node of this.nodes) indexAdd(byValue, node.labels[label], node);
    }
    return byValue;
  }

  private reindexLabels(node: SimNode, before: Readonly<Record<string, string>>): void {
    for (const [label, byValue] of this.nodesByLabel) {
      if (before[label] === node.labels[label]) continue;
      if (before[label] !== undefined) byValue.get(before[label].toLowerCase())?.delete(node);
      indexAdd(byValue, node.labels[label], node);
    }
  }

  private assign(svc: SimService, t: SimTask, nodeId: string): void {
    t.nodeId = nodeId;
    delete t.err;
    t.hostPorts = this.bindHostPorts(svc, nodeId);
    this.load.set(nodeId, (this.load.get(nodeId) ?? 0) + 1);
    this.setState(t, 'assigned', 'scheduler assigned task to node');
    const half = Math.floor(this.o.taskStartMs / 2);
    this.o.clock.setTimer(() => {
      if (t.desiredState !== 'running' || t.state !== 'assigned') return;
      t.containerId = newContainerId(this.o.random);
      this.setState(t, 'starting', 'starting');
      this.emitContainer(t, 'create');
      this.o.clock.setTimer(() => {
        if (t.desiredState !== 'running' || t.state !== 'starting') return;
        this.setState(t, 'running', 'started');
        this.emitContainer(t, 'start');
        this.onRunning(t);
      }, this.o.taskStartMs - half);
    }, half);
  }

  /** A start-first replacement is up: the older tasks of its slot go. */
  private onRunning(t: SimTask): void {
    const svc = this.services.get(t.serviceId);
    if (!svc) return;
    const global = modeOf(svc.spec) === 'global';
    for (const other of this.tasksOf(svc.id)) {
      const sameSlot = global ? other.nodeId === t.nodeId : other.slot === t.slot;
      if (other !== t && sameSlot && other.desiredState === 'running' && other.specVersion < t.specVersion) this.shutDown(other, 'shutdown');
    }
    this.checkUpdateDone(svc);
  }

  private bindHostPorts(svc: SimService, nodeId: string): PublishedPort[] {
    const hostPorts = (svc.spec.EndpointSpec?.Ports ?? []).filter((p: Json) => p.PublishMode === 'host');
    if (!hostPorts.length) return [];
    let used = this.hostPortsInUse.get(nodeId);
    if (!used) this.hostPortsInUse.set(nodeId, (used = new Set()));
    return hostPorts.map((p: Json) => {
      let published: number = p.PublishedPort ?? 0;
      if (!published) {
        // The node's engine picks a free port from the ephemeral range, round robin.
        let next = this.nextHostPort.get(nodeId) ?? EPHEMERAL_PORTS.first;
        while (used!.has(next)) next = next >= EPHEMERAL_PORTS.last ? EPHEMERAL_PORTS.first : next + 1;
        published = next;
        this.nextHostPort.set(nodeId, next >= EPHEMERAL_PORTS.last ? EPHEMERAL_PORTS.first : next + 1);
      }
      used!.add(published);
      return { protocol: p.Protocol, target: p.TargetPort, published, mode: 'host' as const };
    });
  }

  private allocateIngress(spec: Json, previous: Json[]): Json[] {
    return (spec.EndpointSpec?.Ports ?? []).map((p: Json) => {
      if (p.PublishMode !== 'ingress' || p.PublishedPort) return { ...p };
      const kept = previous.find((q) => q.TargetPort === p.TargetPort && q.Protocol === p.Protocol && q.PublishMode === 'ingress');
      let port = kept?.PublishedPort ?? INGRESS_PORTS_FIRST;
      while (!kept && this.ingressPorts.has(port)) port++;
      this.ingressPorts.add(port);
      return { ...p, PublishedPort: port };
    });
  }

  // ---- task life cycle

  private shutDown(t: SimTask, desired: 'shutdown' | 'remove'): void {
    if (t.desiredState === 'running') {
      t.desiredState = desired;
      if (t.nodeId && !(t.state === 'new' || t.state === 'pending')) {
        this.load.set(t.nodeId, (this.load.get(t.nodeId) ?? 1) - 1);
        this.retryPending = true;
        this.requestPass();
      }
      this.touch(t);
    } else if (desired === 'remove' && t.desiredState === 'shutdown') {
      t.desiredState = 'remove';
      this.touch(t);
    }
    if (isTerminal(t.state)) return this.finish(t);
    if (!t.containerId) {
      this.setState(t, 'shutdown', 'shutdown');
      this.releasePorts(t);
      return this.finish(t);
    }
    this.o.clock.setTimer(() => {
      if (isTerminal(t.state)) return;
      t.exitCode = 0;
      this.emitContainer(t, 'die', { exitCode: '0' });
      this.setState(t, 'shutdown', 'shutdown');
      this.releasePorts(t);
      this.finish(t);
    }, this.o.taskStopMs);
  }

  private releasePorts(t: SimTask): void {
    const used = this.hostPortsInUse.get(t.nodeId);
    for (const p of t.hostPorts) used?.delete(p.published);
  }

  /** A finished task is kept as history (Swarm keeps a few per slot); a removed service's go. */
  private finish(t: SimTask): void {
    const svc = this.services.get(t.serviceId);
    if (!svc) return this.deleteTask(t);
    const sameSlot = [...this.tasksOf(svc.id)].filter((o) => (t.slot ? o.slot === t.slot : o.nodeId === t.nodeId));
    const dead = sameSlot.filter((o) => isTerminal(o.state)).sort((a, b) => a.createdAt - b.createdAt || a.version - b.version);
    for (let excess = sameSlot.length - this.o.taskHistory; excess > 0 && dead.length; excess--) this.deleteTask(dead.shift()!);
  }

  private deleteTask(t: SimTask): void {
    if (!this.tasks.delete(t.id)) return;
    if (t.containerId) this.emitContainer(t, 'destroy');
    const set = this.tasksByService.get(t.serviceId);
    set?.delete(t);
    if (set?.size === 0 && !this.services.has(t.serviceId)) this.tasksByService.delete(t.serviceId);
  }

  private setState(t: SimTask, state: TaskState, message: string): void {
    t.state = state;
    t.message = message;
    t.stateAt = this.now();
    this.touch(t);
  }

  private touch(t: SimTask): void {
    t.version = this.nextIndex();
    t.updatedAt = this.now();
  }

  private setUpdateState(svc: SimService, state: NonNullable<SimService['updateStatus']>['state'], message: string): void {
    const old = svc.updateStatus?.state;
    const now = this.now();
    svc.updateStatus = state === 'completed' || state === 'rollback_completed'
      ? { state, startedAt: svc.updateStatus?.startedAt ?? now, completedAt: now, message }
      : { state, startedAt: now, message };
    svc.version = this.nextIndex();
    svc.updatedAt = now;
    this.emitCluster('service', 'update', svc.id, { name: svc.spec.Name, ...(old ? { 'updatestate.old': old } : {}), 'updatestate.new': state }, now);
  }

  private checkUpdateDone(svc: SimService): void {
    const state = svc.updateStatus?.state;
    if (state !== 'updating' && state !== 'rollback_started') return;
    for (const t of this.tasksOf(svc.id)) {
      if (t.desiredState === 'running' && (t.specVersion !== svc.specVersion || t.state !== 'running')) return;
    }
    if (state === 'updating') this.setUpdateState(svc, 'completed', 'update completed');
    else this.setUpdateState(svc, 'rollback_completed', 'rollback completed');
  }

  // ---- events

  private emitCluster(type: 'service' | 'node', action: string, id: string, attributes: Record<string, string>, at: number): void {
    this.o.events.publish({ Type: type, Action: action, Actor: { ID: id, Attributes: attributes }, scope: 'swarm', ...this.o.events.stamp(at) });
  }

  /**
   * Container events come from the daemon of the node running the container, so a real
   * manager's stream carries only its own tasks' (`manager`); `all` pretends to see every node.
   */
  private emitContainer(t: SimTask, action: string, extra: Record<string, string> = {}): void {
    const scope = this.o.containerEvents;
    if (scope === 'none' || !t.containerId || (scope === 'manager' && t.nodeId !== this.self?.id)) return;
    const attributes = { ...this.containerLabels(t), image: t.spec.ContainerSpec?.Image ?? '', name: this.containerName(t), ...extra };
    const event: DockerEvent = {
      status: action,
      id: t.containerId,
      from: attributes.image,
      Type: 'container',
      Action: action,
      Actor: { ID: t.containerId, Attributes: attributes },
      scope: 'local',
      ...this.o.events.stamp(this.now()),
    };
    this.o.events.publish(event);
  }

  /** The labels Swarm's executor puts on a task's container (daemon/cluster/executor/container). */
  containerLabels(t: SimTask): Record<string, string> {
    const serviceName = t.serviceName;
    return {
      ...(t.spec.ContainerSpec?.Labels ?? {}),
      'com.docker.swarm.node.id': t.nodeId,
      'com.docker.swarm.service.id': t.serviceId,
      'com.docker.swarm.service.name': serviceName,
      'com.docker.swarm.task': '',
      'com.docker.swarm.task.id': t.id,
      'com.docker.swarm.task.name': `${serviceName}.${t.slot || t.nodeId}.${t.id}`,
    };
  }

  containerName(t: SimTask): string {
    return `${t.serviceName}.${t.slot || t.nodeId}.${t.id}`;
  }

  private nextIndex(): number {
    return ++this.index;
  }

  private now(): number {
    return this.o.clock.now();
  }
}

function compareTuples(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function indexAdd(byValue: Map<string, Set<SimNode>>, value: string | undefined, node: SimNode): void {
  if (value === undefined) return;
  const key = value.toLowerCase();
  let holding = byValue.get(key);
  if (!holding) byValue.set(key, (holding = new Set()));
  holding.add(node);
}
