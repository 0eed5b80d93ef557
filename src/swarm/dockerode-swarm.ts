import Docker from 'dockerode';
import { AdapterError } from '../api/errors.js';
import type { SwarmApi, SwarmEvent, SwarmObjectKind, SwarmObjectLookup } from './api.js';
import { LABEL_ENV } from './labels.js';
import { NodeTable, type NodeIndex } from './node-index.js';
import type { ObservedNode, ObservedService, ObservedTask } from './model.js';
import type { CredentialLookup } from '../registry/credentials.js';
import { authFor } from './registry-auth.js';
import { withObjectIds } from './object-ids.js';
import { statusCodeOf, withRetry } from './retry.js';
import type { DockerServiceSpec } from './service-spec.js';
import { parseElement, readJsonArray } from './json-array-stream.js';
import { toObservedNode, toObservedService, toObservedTask } from './translate.js';
import { abortableSleep, childSignal } from '../util/abortable-sleep.js';
import { Backoff } from '../util/backoff.js';

const MAX_RECONNECT_DELAY_MS = 30_000;
export const DEFAULT_DOCKER_TIMEOUT_MS = 10_000;

export interface DockerodeSwarmOptions {
  /** Defaults to a client configured from DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (docker-modem). */
  docker?: Docker;
  onApiError?: (operation: string) => void;
  /** Every request made, failed or not (berth_docker_api_requests_total). */
  onApiRequest?: (operation: string) => void;
  /** A call that ran past its deadline (also counted by onApiError). */
  onApiTimeout?: (operation: string) => void;
  /** Registry credentials sent with service create/update (X-Registry-Auth), by registry host. */
  registryCredentials?: CredentialLookup;
  /** Deadline of one call, retries included (not of the event stream), ms. */
  timeoutMs?: number;
  retries?: number;
  /** First delay before reconnecting the events stream; doubles up to 30 s while Docker is unreachable. */
  reconnectDelayMs?: number;
}

/** dockerode's (auth, options) form of a call, which its typings leave out. */
function withAuth(fn: (...args: never[]) => unknown): (auth: object | undefined, options: object) => Promise<unknown> {
  return fn as never;
}

interface SeenTask {
  version: number;
  task: ObservedTask;
}

/** `{"ID":"…","Version":{"Index":N}`: how Docker opens a task object. */
const TASK_HEAD = /^\{\s*"ID"\s*:\s*"([^"\\]+)"\s*,\s*"Version"\s*:\s*\{\s*"Index"\s*:\s*(\d+)\s*\}/;

/** A list element parsed, then projected. */
function parsed<T>(project: (item: Record<string, unknown>) => T): (bytes: Buffer) => T {
  return (bytes) => project(parseElement(bytes) as Record<string, unknown>);
}

/** SwarmApi over the Docker Engine API of a Swarm manager. */
export class DockerodeSwarm implements SwarmApi, SwarmObjectLookup {
  private readonly docker: Docker;
  private readonly opts: DockerodeSwarmOptions;
  /** The tasks of the last list of running tasks (and those listed by service since), by id. */
  private tasksSeen = new Map<string, SeenTask>();
  /**
   * Each node's spec as last read, with its version: a label update replaces the whole spec, and
   * starting from the one read at the version the update names spares reading it again (were it
   * not current, Docker refuses the update for its version, as it would any stale one).
   */
  private readonly nodeSpecs = new Map<string, { version: number; spec: unknown }>();

  constructor(opts: DockerodeSwarmOptions = {}) {
    // docker-modem reads DOCKER_HOST itself, including `unix:///path/docker.sock`.
    this.docker = opts.docker ?? new Docker();
    this.opts = opts;
  }

  /**
   * One call with its retries, under one deadline: the request is aborted when it passes (a
   * paused dockerd accepts the connection and never answers), and the call is abandoned even
   * if the request ignores the abort.
   */
  private async call<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeoutMs = this.opts.timeoutMs ?? DEFAULT_DOCKER_TIMEOUT_MS;
    const deadline = new AbortController();
    let timer!: NodeJS.Timeout;
    const abandoned = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        deadline.abort();
        reject(new Error('deadline passed'));
      }, timeoutMs);
    });
    abandoned.catch(() => undefined);
    const counted = () => {
      this.opts.onApiRequest?.(operation);
      return Promise.race([fn(deadline.signal), abandoned]);
    };
    try {
      return await withRetry(operation, counted, { retries: this.opts.retries ?? 2, onError: this.opts.onApiError });
    } catch (err) {
      if (!deadline.signal.aborted) throw err;
      this.opts.onApiTimeout?.(operation);
      throw new AdapterError(operation, `Docker did not answer within ${timeoutMs} ms`, { cause: err, recoverable: true });
    } finally {
      clearTimeout(timer);
    }
  }

  async nodeIndex(): Promise<NodeIndex> {
    return NodeTable.of(await this.listNodes());
  }

  async listNodes(): Promise<ObservedNode[]> {
    return this.call('listNodes', (abortSignal) => this.list('/nodes?', {}, abortSignal, parsed((n) => this.observeNode(n))));
  }

  async inspectNode(id: string): Promise<ObservedNode | undefined> {
    try {
      return this.observeNode(await this.call('inspectNode', (abortSignal) => this.docker.getNode(id).inspect({ abortSignal })));
    } catch (err) {
      if (statusCodeOf((err as Error).cause) === 404) return undefined;
      throw err;
    }
  }

  async listNodesById(ids: string[]): Promise<ObservedNode[]> {
    if (ids.length === 0) return [];
    return this.call('listNodesById', (abortSignal) => this.list('/nodes?', { filters: { id: ids } }, abortSignal, parsed((n) => this.observeNode(n))));
  }

  async updateNodeLabels(id: string, version: number, labels: Record<string, string>): Promise<void> {
    await this.call('updateNode', async (abortSignal) => {
      // The update replaces the whole node spec: keep role and availability as they are.
      let current = this.nodeSpecs.get(id);
      if (current?.version !== version) {
        this.opts.onApiRequest?.('inspectNode');
        const read = await this.docker.getNode(id).inspect({ abortSignal });
        current = { version: read.Version?.Index ?? 0, spec: read.Spec };
      }
      const spec = { ...((current.spec as object | undefined) ?? {}), Labels: labels };
      await this.docker.getNode(id).update({ _query: { version }, _body: spec, abortSignal } as never);
    });
  }

  private observeNode(raw: Record<string, unknown>): ObservedNode {
    const node = toObservedNode(raw);
    this.nodeSpecs.set(node.id, { version: node.version, spec: raw.Spec });
    return node;
  }

  async listServices(env?: string): Promise<ObservedService[]> {
    const label = env ? `${LABEL_ENV}=${env}` : LABEL_ENV;
    return this.call('listServices', (abortSignal) => this.list('/services?', { filters: { label: [label] } }, abortSignal, parsed(toObservedService)));
  }

  async inspectService(id: string): Promise<ObservedService | undefined> {
    try {
      const s = await this.call('inspectService', (abortSignal) => this.docker.getService(id).inspect({ abortSignal }));
      return toObservedService(s);
    } catch (err) {
      if (statusCodeOf((err as Error).cause) === 404) return undefined;
      throw err;
    }
  }

  async listServicesById(ids: string[]): Promise<ObservedService[]> {
    if (ids.length === 0) return [];
    return this.call('listServicesById', (abortSignal) => this.list('/services?', { filters: { id: ids } }, abortSignal, parsed(toObservedService)));
  }

  /** Credentials for the spec's image, so the nodes can pull it from a private registry. */
  private async authOf(spec: DockerServiceSpec): Promise<object | undefined> {
    const image = (spec.TaskTemplate as { ContainerSpec?: { Image?: string } } | undefined)?.ContainerSpec?.Image;
    return image && this.opts.registryCredentials ? authFor(this.opts.registryCredentials, image) : undefined;
  }

  async findObjectIds(kind: SwarmObjectKind, names: string[]): Promise<Map<string, string>> {
    // `name` matches prefixes (and is the filter both kinds accept): keep the exact names only.
    const filters = { name: names };
    const found = (await (kind === 'secret'
      ? this.call('listSecrets', (abortSignal) => this.docker.listSecrets({ filters, abortSignal } as object))
      : this.call('listConfigs', (abortSignal) => this.docker.listConfigs({ filters, abortSignal } as object)))) as Array<{ ID: string; Spec?: { Name?: string } }>;
    return new Map(found.filter((o) => o.Spec?.Name && names.includes(o.Spec.Name)).map((o) => [o.Spec!.Name!, o.ID]));
  }

  async createService(spec: DockerServiceSpec): Promise<string> {
    const auth = await this.authOf(spec);
    const body = await withObjectIds('createService', spec, this);
    const created = await this.call('createService', (abortSignal) => withAuth(this.docker.createService.bind(this.docker))(auth, { ...body, abortSignal }));
    return (created as unknown as { id: string }).id;
  }

  async updateService(id: string, version: number, spec: DockerServiceSpec): Promise<void> {
    const auth = await this.authOf(spec);
    const body = await withObjectIds('updateService', spec, this);
    const service = this.docker.getService(id);
    await this.call('updateService', (abortSignal) => withAuth(service.update.bind(service))(auth, { _query: { version }, _body: body, abortSignal }));
  }

  async scaleService(id: string, version: number, replicas: number): Promise<void> {
    await this.call('updateService', async (abortSignal) => {
      // Two requests: the update replaces the whole spec, so the current one is read first.
      this.opts.onApiRequest?.('inspectService');
      const current = await this.docker.getService(id).inspect({ abortSignal });
      const spec = { ...(current.Spec ?? {}), Mode: { Replicated: { Replicas: replicas } } };
      await this.docker.getService(id).update({ _query: { version }, _body: spec, abortSignal } as never);
    });
  }

  async removeService(id: string): Promise<void> {
    try {
      await this.call('removeService', (abortSignal) => this.docker.getService(id).remove({ abortSignal }));
    } catch (err) {
      if (statusCodeOf((err as Error).cause) === 404) return;
      throw err;
    }
  }

  async listTasks(serviceIds: string[]): Promise<ObservedTask[]> {
    if (serviceIds.length === 0) return [];
    return this.call('listTasks', (abortSignal) => this.list('/tasks?', { filters: { service: serviceIds } }, abortSignal, (bytes) => this.decodeTask(bytes, this.tasksSeen)));
  }

  async listRunningTasks(): Promise<ObservedTask[]> {
    return this.call('listTasks', async (abortSignal) => {
      const seen = new Map<string, SeenTask>();
      const tasks = await this.list('/tasks?', { filters: { 'desired-state': ['running'] } }, abortSignal, (bytes) => this.decodeTask(bytes, seen));
      // What this list did not hold is gone or no longer meant to run: forgotten.
      this.tasksSeen = seen;
      return tasks;
    });
  }

  /**
   * A task read before at the same version is what was read then (Swarm raises a task's version
   * on every change): it is not parsed again. Its id and version open the object (Docker's field
   * order), so they are read from its first bytes; a task with no such head is parsed.
   */
  private decodeTask(bytes: Buffer, into: Map<string, SeenTask>): ObservedTask {
    const head = TASK_HEAD.exec(bytes.subarray(0, 200).toString('latin1'));
    const version = head ? Number(head[2]) : undefined;
    const known = head ? this.tasksSeen.get(head[1]!) : undefined;
    const task = known && known.version === version ? known.task : toObservedTask(parseElement(bytes) as Record<string, unknown>);
    if (version !== undefined) into.set(task.id, { version, task });
    return task;
  }

  /**
   * A list call whose body is read as a stream, one element at a time into `project` (see
   * json-array-stream.ts): the lists of a large Swarm are tens of megabytes of JSON.
   */
  private list<T>(path: string, options: object, abortSignal: AbortSignal, decode: (bytes: Buffer) => T): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const dial = { path, method: 'GET', options: { ...options }, abortSignal, isStream: true, statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error', 503: 'node is not part of a swarm' } };
      this.docker.modem.dial(dial, (err, stream) => {
        if (err) return reject(err);
        readJsonArray(stream as NodeJS.ReadableStream, decode).then(resolve, reject);
      });
    });
  }

  async watchEvents(onEvent: (e: SwarmEvent) => void, signal: AbortSignal, onReconnect?: () => void): Promise<void> {
    const reconnect = new Backoff(this.opts.reconnectDelayMs ?? 1_000, MAX_RECONNECT_DELAY_MS);
    let first = true;
    while (!signal.aborted) {
      // Each connection attempt gets its own signal: the HTTP request hangs a listener on it.
      const attempt = childSignal(signal);
      try {
        const stream = await this.docker.getEvents({
          filters: { type: ['service', 'node', 'container'] },
          abortSignal: attempt.signal,
        } as Docker.GetEventsOptions);
        if (!first) onReconnect?.();
        first = false;
        reconnect.reset();
        await consumeEventStream(stream, onEvent, signal);
      } catch {
        if (signal.aborted) return;
        this.opts.onApiError?.('events');
      } finally {
        attempt.release();
      }
      if (signal.aborted) return;
      first = false;
      // Capped exponential backoff while Docker is unreachable; reset once a stream opened.
      await abortableSleep(reconnect.next(), signal);
    }
  }
}

/** The events endpoint streams one JSON object per line; chunks may split or join lines. */
function consumeEventStream(stream: NodeJS.ReadableStream, onEvent: (e: SwarmEvent) => void, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onAbort = () => {
      (stream as unknown as { destroy?: () => void }).destroy?.();
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer | string) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        try {
          const raw = JSON.parse(line) as { Type?: string; Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
          const type = raw.Type as SwarmEvent['type'];
          onEvent({ type, action: raw.Action ?? '', id: raw.Actor?.ID ?? '', attributes: raw.Actor?.Attributes ?? {} });
        } catch {
          // A malformed line is skipped: the periodic resync covers anything missed.
        }
      }
    });
    const finish = (err?: unknown) => {
      signal.removeEventListener('abort', onAbort);
      if (err && !signal.aborted) reject(err);
      else resolve();
    };
    stream.on('end', () => finish());
    stream.on('close', () => finish());
    stream.on('error', (err) => finish(err));
  });
}
