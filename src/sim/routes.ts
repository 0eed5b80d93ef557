import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../runtime/clock.js';
import type { SimCluster } from './cluster.js';
import { EngineError } from './errors.js';
import { EVENT_FILTERS, eventLine, eventMatches, parseEventTime, type DockerEvent, type EventBus } from './events.js';
import { FilterError, exact, labels, parseFilters, prefix, type Filters } from './filters.js';
import { OBJECT_ID_LENGTH, type Json, type SimTask } from './model.js';
import { infoJson, nodeJson, serviceJson, swarmJson, taskJson, versionJson } from './render.js';
import { modeOf } from './spec.js';

/*
 * The Engine API subset: ping, version, info, swarm, nodes, services, tasks, events, plus empty
 * lists for networks, secrets, configs and containers so clients that glance at them go on.
 * Paths may carry a version prefix (`/v1.41/services`). Unknown paths answer 404 as Docker does.
 */

export interface RouteContext {
  cluster: SimCluster;
  events: EventBus;
  clock: Clock;
  /** Open event streams, so closing the server can end them. */
  streams: Set<ServerResponse>;
  /** Requests served, by route: what a benchmark reads to count a client's API calls. */
  counts: Map<string, number>;
}

/** A reply: a body sent whole, or a list's elements, rendered and sent a slice at a time (`sendList`). */
type Reply = { status: number; body?: unknown } | { status: 200; list: Iterable<Json> };
type Route = { method: string; pattern: RegExp; name: string; handle: (m: RegExpExecArray, q: URLSearchParams, body: () => Promise<Json>, ctx: RouteContext, res: ServerResponse) => Promise<Reply | undefined> | Reply | undefined };

const ok = (body?: unknown): Reply => ({ status: 200, body });
const okList = (list: Iterable<Json>): Reply => ({ status: 200, list });

const NODE_FILTERS = ['id', 'label', 'membership', 'name', 'node.label', 'role'];
const SERVICE_FILTERS = ['id', 'label', 'mode', 'name'];
const TASK_FILTERS = ['_up-to-date', 'desired-state', 'id', 'label', 'name', 'node', 'runtime', 'service'];

const ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/_ping$/, name: 'ping', handle: () => ok('OK') },
  { method: 'HEAD', pattern: /^\/_ping$/, name: 'ping', handle: () => ok('') },
  { method: 'GET', pattern: /^\/version$/, name: 'version', handle: (_m, _q, _b, c) => ok(versionJson(c.cluster.engineVersion)) },
  { method: 'GET', pattern: /^\/info$/, name: 'info', handle: (_m, _q, _b, c) => ok(infoJson(c.cluster, c.events.subscribers, c.clock.now())) },
  { method: 'GET', pattern: /^\/swarm$/, name: 'swarm', handle: (_m, _q, _b, c) => ok(swarmJson(c.cluster)) },
  { method: 'GET', pattern: /^\/nodes$/, name: 'nodes.list', handle: (_m, q, _b, c) => okList(listNodes(c, q)) },
  { method: 'GET', pattern: /^\/nodes\/([^/]+)$/, name: 'nodes.inspect', handle: (m, _q, _b, c) => ok(nodeJson(c.cluster.node(m[1]!), c.cluster.engineVersion)) },
  {
    method: 'POST', pattern: /^\/nodes\/([^/]+)\/update$/, name: 'nodes.update',
    handle: async (m, q, body, c) => {
      c.cluster.updateNode(m[1]!, versionParam(q), await body());
      return ok();
    },
  },
  {
    method: 'DELETE', pattern: /^\/nodes\/([^/]+)$/, name: 'nodes.remove',
    handle: (m, _q, _b, c) => {
      const node = c.cluster.node(m[1]!);
      throw new EngineError(400, `rpc error: code = FailedPrecondition desc = node ${node.id} is not down and can't be removed`);
    },
  },
  { method: 'GET', pattern: /^\/services$/, name: 'services.list', handle: (_m, q, _b, c) => okList(listServices(c, q)) },
  {
    method: 'POST', pattern: /^\/services\/create$/, name: 'services.create',
    handle: async (_m, _q, body, c) => ({ status: 201, body: { ID: c.cluster.createService(await body()).id } }),
  },
  { method: 'GET', pattern: /^\/services\/([^/]+)$/, name: 'services.inspect', handle: (m, _q, _b, c) => ok(serviceJson(c.cluster.service(m[1]!))) },
  {
    method: 'POST', pattern: /^\/services\/([^/]+)\/update$/, name: 'services.update',
    handle: async (m, q, body, c) => {
      c.cluster.updateService(m[1]!, versionParam(q), await body(), q.get('rollback') === 'previous');
      return ok({ Warnings: null });
    },
  },
  {
    method: 'DELETE', pattern: /^\/services\/([^/]+)$/, name: 'services.remove',
    handle: (m, _q, _b, c) => {
      c.cluster.removeService(m[1]!);
      return ok();
    },
  },
  { method: 'GET', pattern: /^\/tasks$/, name: 'tasks.list', handle: (_m, q, _b, c) => okList(listTasks(c, q)) },
  { method: 'GET', pattern: /^\/tasks\/([^/]+)$/, name: 'tasks.inspect', handle: (m, _q, _b, c) => ok(taskJson(c.cluster.task(m[1]!))) },
  { method: 'GET', pattern: /^\/events$/, name: 'events', handle: (_m, q, _b, c, res) => streamEvents(c, q, res) },
  { method: 'GET', pattern: /^\/(networks|secrets|configs|containers\/json)$/, name: 'empty-lists', handle: () => ok([]) },
  {
    method: 'GET', pattern: /^\/distribution\/(.+)\/json$/, name: 'distribution',
    // No registry behind the simulator: the CLI warns that it cannot pin a digest and goes on.
    handle: (m) => {
      throw new EngineError(404, `simulated Swarm has no registry: cannot resolve ${decodeURIComponent(m[1]!)}`);
    },
  },
];

export async function route(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sim');
  const path = url.pathname.replace(/^\/v\d+\.\d+(?=\/)/, '');
  const method = req.method === 'HEAD' && path !== '/_ping' ? 'GET' : req.method ?? 'GET';
  let routed: Route | undefined;
  let match: RegExpExecArray | null = null;
  for (const r of ROUTES) {
    if (r.method === method && (match = r.pattern.exec(path))) {
      routed = r;
      break;
    }
  }
  const name = routed ? routed.name : 'unknown';
  ctx.counts.set(name, (ctx.counts.get(name) ?? 0) + 1);
  try {
    if (!routed || !match) throw new EngineError(404, 'page not found');
    const reply = await routed.handle(match, url.searchParams, () => readJson(req), ctx, res);
    if (reply && 'list' in reply) await sendList(res, reply.list);
    else if (reply) send(res, reply.status, reply.body);
  } catch (err) {
    const status = err instanceof EngineError ? err.status : err instanceof FilterError ? 400 : 500;
    send(res, status, { message: (err as Error).message });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.end();
  if (body === undefined) {
    res.writeHead(status === 200 ? 200 : status, { 'Content-Length': 0 });
    return void res.end();
  }
  const text = typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Elements rendered and written per slice of a list. */
const LIST_SLICE = 200;

/**
 * A list of thousands of objects is rendered and written a slice at a time, other requests
 * served in between: a manager answers its other clients while one lists the whole Swarm, and a
 * simulator that stopped for a quarter of a second to render ten thousand tasks would charge
 * that to whatever the client does meanwhile. Each element is rendered as its object is when its
 * slice goes out.
 */
async function sendList(res: ServerResponse, list: Iterable<Json>): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  let slice: string[] = [];
  let written = 0;
  const flush = async () => {
    const more = res.write((written === 0 ? '[' : ',') + slice.join(','));
    written += slice.length;
    slice = [];
    if (!more) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    await new Promise((r) => setImmediate(r));
  };
  for (const element of list) {
    slice.push(JSON.stringify(element));
    if (slice.length === LIST_SLICE) await flush();
    if (res.destroyed) return;
  }
  if (slice.length > 0) await flush();
  res.end(`${written === 0 ? '[' : ''}]\n`);
}

async function readJson(req: IncomingMessage): Promise<Json> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  try {
    return JSON.parse(text) as Json;
  } catch {
    throw new EngineError(400, 'invalid JSON body');
  }
}

function versionParam(q: URLSearchParams): number {
  const raw = q.get('version');
  const v = Number(raw);
  if (raw === null || !Number.isInteger(v)) throw new EngineError(400, `invalid or missing version: ${raw ?? ''}`);
  return v;
}

function listNodes(c: RouteContext, q: URLSearchParams): Iterable<Json> {
  const f = parseFilters(q.get('filters'), NODE_FILTERS);
  const nodes = named(f, () => c.cluster.nodes, (id) => c.cluster.nodeById(id)).filter(
      (n) =>
        prefix(f, 'id', n.id) &&
        prefix(f, 'name', n.hostname, n.specName || undefined) &&
        exact(f, 'role', n.role) &&
        exact(f, 'membership', 'accepted') &&
        labels(f, 'node.label', n.labels) &&
        labels(f, 'label', {}),
  );
  return lazily(nodes, (n) => nodeJson(n, c.cluster.engineVersion));
}

/**
 * The candidates of a list: when every `id` value is a whole id (as berth's reads of several
 * objects send), only they, looked up, since a whole id is the prefix of no other; else all.
 * The `id` filter is applied to them as to all.
 */
function named<T>(f: Filters, all: () => T[], byId: (id: string) => T | undefined): T[] {
  const ids = f.get('id');
  if (!ids || ids.some((id) => id.length !== OBJECT_ID_LENGTH)) return all();
  return [...new Set(ids)].flatMap((id) => byId(id) ?? []);
}

/** The objects a list holds are chosen now; each is rendered when its slice is sent. */
function* lazily<T>(objects: T[], render: (o: T) => Json): Iterable<Json> {
  for (const o of objects) yield render(o);
}

function listServices(c: RouteContext, q: URLSearchParams): Iterable<Json> {
  const f = parseFilters(q.get('filters'), SERVICE_FILTERS);
  const withStatus = q.get('status') === 'true' || q.get('status') === '1';
  const services = named(f, () => c.cluster.listServices(), (id) => c.cluster.serviceById(id))
    .filter((s) => prefix(f, 'id', s.id) && prefix(f, 'name', s.spec.Name) && exact(f, 'mode', modeOf(s.spec)) && labels(f, 'label', s.spec.Labels ?? {}));
  return lazily(services, (s) => serviceJson(s, withStatus ? c.cluster.serviceStatus(s) : undefined));
}

function listTasks(c: RouteContext, q: URLSearchParams): Iterable<Json> {
  const f = parseFilters(q.get('filters'), TASK_FILTERS);
  // As the daemon does, `service` and `node` values are names or ids, resolved first (404 if unknown).
  const services = f.get('service')?.map((ref) => c.cluster.service(ref).id);
  const nodes = new Set(f.get('node')?.map((ref) => c.cluster.node(ref).id));
  const upToDate = f.get('_up-to-date');
  const source: Iterable<SimTask> = services ? services.flatMap((id) => [...c.cluster.tasksOf(id)]) : c.cluster.listTasks();
  const out: SimTask[] = [];
  for (const t of source) {
    if (nodes.size && !nodes.has(t.nodeId)) continue;
    if (!exact(f, 'desired-state', t.desiredState) || !prefix(f, 'id', t.id) || !labels(f, 'label', {})) continue;
    if (!prefix(f, 'name', `${t.serviceName}.${t.slot || t.nodeId}`)) continue;
    if (upToDate && (c.cluster.serviceById(t.serviceId)?.specVersion ?? -1) !== t.specVersion) continue;
    out.push(t);
  }
  return lazily(out, taskJson);
}

/**
 * `GET /events`: replays what is kept since `since`, then streams; with `until` the stream ends
 * there (at once when it is in the past). Headers go out first, as the daemon flushes them.
 */
function streamEvents(c: RouteContext, q: URLSearchParams, res: ServerResponse): undefined {
  const f = parseFilters(q.get('filters'), EVENT_FILTERS);
  let since: bigint | undefined;
  let until: bigint | undefined;
  try {
    since = parseEventTime(q.get('since'));
    until = parseEventTime(q.get('until'));
  } catch (err) {
    throw new EngineError(400, (err as Error).message);
  }
  const nowNano = BigInt(c.clock.now()) * 1_000_000n;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  const write = (e: DockerEvent) => {
    if (until !== undefined && e.timeNano > until) return;
    if (eventMatches(f, e)) res.write(eventLine(e));
  };
  const sub = c.events.subscribe(write, since);
  for (const e of sub.replay) write(e);
  c.streams.add(res);
  let timer: unknown;
  const end = () => {
    sub.unsubscribe();
    c.streams.delete(res);
    if (timer !== undefined) c.clock.clearTimer(timer);
    res.end();
  };
  res.on('close', end);
  if (until !== undefined) {
    if (until <= nowNano) end();
    else timer = c.clock.setTimer(end, Number((until - nowNano) / 1_000_000n));
  }
  return undefined;
}
