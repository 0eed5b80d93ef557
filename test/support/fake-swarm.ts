import { AdapterError } from '../../src/api/errors.js';
import type { SwarmApi, SwarmEvent } from '../../src/swarm/api.js';
import { LABEL_ENV } from '../../src/swarm/labels.js';
import type { ObservedNode, ObservedService, ObservedTask, SwarmSnapshot } from '../../src/swarm/model.js';
import { NodeTable, type NodeIndex } from '../../src/swarm/node-index.js';
import type { DockerServiceSpec } from '../../src/swarm/service-spec.js';
import { containerTemplate } from '../../src/swarm/translate.js';

/** A pool node for tests: lab-N in zone z, Ready/Active, pool=lab. */
export function fakeNode(n: number, opts: Partial<ObservedNode> & { zone?: string } = {}): ObservedNode {
  const { zone, labels, ...rest } = opts;
  return {
    id: `node${n}`,
    hostname: `lab-${n}`,
    addr: `10.77.0.${10 + n}`,
    role: n === 1 ? 'manager' : 'worker',
    state: 'ready',
    availability: 'active',
    labels: { pool: 'lab', zone: zone ?? String.fromCharCode(96 + n), ...(labels ?? {}) },
    version: 1,
    ...rest,
  };
}

/**
 * An in-memory Swarm. It keeps nodes and services, and "schedules" tasks crudely so the
 * reconciler sees running replicas: each service gets `replicas` running tasks spread over the
 * nodes labelled for its environment. `failNext(op)` makes the next call of an operation throw.
 */
export class FakeSwarm implements SwarmApi {
  nodes: ObservedNode[] = [];
  services: (ObservedService & { spec: DockerServiceSpec })[] = [];
  /** A call of one of these operations, once done, answers only when the promise settles (an answer on its way). */
  readonly answered = new Map<string, Promise<void>>();
  calls: string[] = [];
  /** A job run's task state, by service name (desired state `complete`, as Swarm has it); none until set. */
  jobTaskStates = new Map<string, ObservedTask['state']>();
  /** Tasks of services running one of these images never pass their healthcheck (stay `starting`). */
  unhealthyImages = new Set<string>();
  private seq = 0;
  private readonly previousSpecs = new Map<string, DockerServiceSpec>();
  private readonly watchers = new Set<{ onEvent: (e: SwarmEvent) => void; onReconnect: (() => void) | undefined }>();
  private failures = new Map<string, AdapterError[]>();

  constructor(nodes: ObservedNode[] = []) {
    this.nodes = nodes.map((n) => ({ ...n, labels: { ...n.labels } }));
  }

  failNext(operation: string, opts: { recoverable?: boolean; message?: string } = {}): void {
    const list = this.failures.get(operation) ?? [];
    list.push(new AdapterError(operation, opts.message ?? 'injected failure', { recoverable: opts.recoverable ?? true }));
    this.failures.set(operation, list);
  }

  private op(name: string): void {
    this.calls.push(name);
    const err = this.failures.get(name)?.shift();
    if (err) throw err;
  }

  snapshot(): SwarmSnapshot {
    return { nodes: NodeTable.of(structuredClone(this.nodes)), services: this.services.map(({ spec: _s, ...rest }) => structuredClone(rest)), tasks: this.tasks() };
  }

  async listNodes(): Promise<ObservedNode[]> {
    this.op('listNodes');
    return structuredClone(this.nodes);
  }

  async nodeIndex(): Promise<NodeIndex> {
    return NodeTable.of(await this.listNodes());
  }

  async inspectNode(id: string): Promise<ObservedNode | undefined> {
    this.op('inspectNode');
    const node = this.nodes.find((n) => n.id === id);
    return node && structuredClone(node);
  }

  /** As Docker: each id matches as a prefix (`node1` also matches `node10`). */
  async listNodesById(ids: string[]): Promise<ObservedNode[]> {
    this.op('listNodesById');
    const found = structuredClone(this.nodes.filter((n) => ids.some((id) => n.id.startsWith(id))));
    await this.answered.get('listNodesById');
    return found;
  }

  async updateNodeLabels(id: string, version: number, labels: Record<string, string>): Promise<void> {
    this.op('updateNode');
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new AdapterError('updateNode', 'no such node', { recoverable: false });
    if (node.version !== version) throw new AdapterError('updateNode', 'update out of sequence', { recoverable: false });
    node.labels = { ...labels };
    node.version++;
  }

  async listServices(env?: string): Promise<ObservedService[]> {
    this.op('listServices');
    return this.snapshot().services.filter((s) => (env ? s.labels[LABEL_ENV] === env : LABEL_ENV in s.labels));
  }

  async inspectService(id: string): Promise<ObservedService | undefined> {
    this.op('inspectService');
    return this.snapshot().services.find((s) => s.id === id);
  }

  /** As Docker: each id matches as a prefix (`svc1` also matches `svc10`), foreign services included. */
  async listServicesById(ids: string[]): Promise<ObservedService[]> {
    this.op('listServicesById');
    const found = this.snapshot().services.filter((s) => ids.some((id) => s.id.startsWith(id)));
    await this.answered.get('listServicesById');
    return found;
  }

  async createService(spec: DockerServiceSpec): Promise<string> {
    this.op('createService');
    if (this.services.some((s) => s.name === spec.Name)) throw new AdapterError('createService', 'name conflicts', { recoverable: false });
    const id = `svc${++this.seq}`;
    const now = new Date(this.seq * 1000).toISOString();
    this.services.push({ id, version: 1, createdAt: now, updatedAt: now, ...fromSpec(spec), spec });
    await this.answered.get('createService');
    return id;
  }

  async updateService(id: string, version: number, spec: DockerServiceSpec): Promise<void> {
    this.op('updateService');
    const s = this.services.find((x) => x.id === id);
    if (!s) throw new AdapterError('updateService', 'no such service', { recoverable: false });
    if (s.version !== version) throw new AdapterError('updateService', 'update out of sequence', { recoverable: false });
    this.previousSpecs.set(id, s.spec);
    delete s.updateStatus;
    Object.assign(s, fromSpec(spec), { spec, version: s.version + 1 });
  }

  /** Swarm's automatic rollback of the last update (FailureAction rollback): the spec before it is back. */
  rollBack(name: string, startedAt: string, message = 'update rolled back due to failure or early termination of task'): void {
    const s = this.services.find((x) => x.name === name)!;
    const previous = this.previousSpecs.get(s.id)!;
    this.previousSpecs.delete(s.id); // as Swarm: no PreviousSpec after an automatic rollback
    Object.assign(s, fromSpec(previous), { spec: previous, version: s.version + 1, updateStatus: { state: 'rollback_completed', message, startedAt } });
  }

  async scaleService(id: string, version: number, replicas: number): Promise<void> {
    this.op('scaleService');
    const s = this.services.find((x) => x.id === id);
    if (!s) throw new AdapterError('updateService', 'no such service', { recoverable: false });
    if (s.version !== version) throw new AdapterError('updateService', 'update out of sequence', { recoverable: false });
    s.spec = { ...s.spec, Mode: { Replicated: { Replicas: replicas } } };
    s.replicas = replicas;
    s.version++;
  }

  async removeService(id: string): Promise<void> {
    this.op('removeService');
    this.services = this.services.filter((s) => s.id !== id);
  }

  async listRunningTasks(): Promise<ObservedTask[]> {
    this.op('listTasks');
    return this.tasks().filter((t) => t.desiredState === 'running');
  }

  async listTasks(serviceIds: string[]): Promise<ObservedTask[]> {
    this.op('listTasks');
    return this.tasks().filter((t) => serviceIds.includes(t.serviceId));
  }

  async watchEvents(onEvent: (e: SwarmEvent) => void, signal: AbortSignal, onReconnect?: () => void): Promise<void> {
    const watcher = { onEvent, onReconnect };
    this.watchers.add(watcher);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    this.watchers.delete(watcher);
  }

  /** Delivers an event to every open event stream, as Docker would. */
  emitEvent(e: SwarmEvent): void {
    for (const w of this.watchers) w.onEvent(e);
  }

  /** The event stream dropped and came back: events in between may be lost. */
  reconnectEvents(): void {
    for (const w of this.watchers) w.onReconnect?.();
  }

  /** Adds a service by hand (e.g. one berth does not own). */
  addForeignService(name: string, labels: Record<string, string> = {}, replicas = 1): string {
    const id = `svc${++this.seq}`;
    this.services.push({ id, name, version: 1, labels, replicas, image: 'x', template: 'x', createdAt: '', updatedAt: '', spec: { Name: name, Labels: labels } });
    return id;
  }

  /** `docker service scale` by hand. */
  scaleByHand(name: string, replicas: number): void {
    const s = this.services.find((x) => x.name === name)!;
    s.replicas = replicas;
    s.version++;
  }

  private tasks(): ObservedTask[] {
    const tasks: ObservedTask[] = [];
    for (const s of this.services) {
      const jobState = this.jobTaskStates.get(s.name);
      if (jobState) {
        const node = this.nodes.find((n) => n.labels[LABEL_ENV] === s.labels[LABEL_ENV]);
        tasks.push({ id: `${s.id}.1`, serviceId: s.id, nodeId: node?.id ?? '', slot: 1, desiredState: 'complete', state: jobState, template: s.template, ports: [], message: jobState });
        continue;
      }
      const env = s.labels[LABEL_ENV];
      const nodes = this.nodes.filter((n) => env && n.labels[LABEL_ENV] === env && n.state === 'ready' && n.availability === 'active');
      const maxPerNode = s.spec.TaskTemplate && 'Placement' in s.spec.TaskTemplate ? s.spec.TaskTemplate.Placement?.MaxReplicas : undefined;
      const capacity = maxPerNode ? nodes.length * maxPerNode : Infinity;
      const ports = (s.spec.EndpointSpec?.Ports ?? []).map((p, i) => ({ target: p.TargetPort!, published: p.PublishedPort ?? 30000 + i, protocol: 'tcp' as const }));
      const healthy = !this.unhealthyImages.has(s.image);
      for (let slot = 1; slot <= s.replicas; slot++) {
        const node = slot <= capacity ? nodes[(slot - 1) % Math.max(1, nodes.length)] : undefined;
        tasks.push({
          id: `${s.id}.${slot}`,
          serviceId: s.id,
          nodeId: node?.id ?? '',
          slot,
          desiredState: 'running',
          state: node ? (healthy ? 'running' : 'starting') : 'pending',
          template: s.template,
          ports: node ? ports : [],
          message: node ? 'started' : 'no suitable node',
        });
      }
    }
    return tasks;
  }
}

function fromSpec(spec: DockerServiceSpec): Pick<ObservedService, 'name' | 'labels' | 'replicas' | 'image' | 'template'> {
  const task = spec.TaskTemplate as { ContainerSpec?: { Image?: string } } | undefined;
  return {
    name: spec.Name ?? '',
    labels: { ...(spec.Labels ?? {}) },
    replicas: spec.Mode?.Replicated?.Replicas ?? 0,
    image: task?.ContainerSpec?.Image ?? '',
    template: containerTemplate(task?.ContainerSpec),
  };
}
