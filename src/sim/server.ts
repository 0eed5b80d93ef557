import { lstat, unlink } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { realClock, type Clock } from '../runtime/clock.js';
import { SimCluster, type ClusterOptions } from './cluster.js';
import { EventBus } from './events.js';
import { API_VERSION } from './render.js';
import { route, type RouteContext } from './routes.js';

/*
 * `berth sim`'s server: node:http on a unix socket, every response delayed by the configured
 * latency (a real manager answers in milliseconds, not microseconds), Docker's response headers.
 */

export interface SimServerOptions extends Omit<ClusterOptions, 'clock' | 'events'> {
  socketPath: string;
  /** Added before every response (the events stream: before its headers). */
  latencyMs?: number;
  /** Events kept for `since` replays (Docker keeps 256). */
  eventsKept?: number;
  clock?: Clock;
}

export interface SimServer {
  readonly cluster: SimCluster;
  readonly events: EventBus;
  readonly socketPath: string;
  /** Requests served per route name. */
  readonly counts: ReadonlyMap<string, number>;
  close(): Promise<void>;
}

/** Go's net/http accepts 1 MiB of headers; a task list filtered by thousands of service ids needs it. */
const MAX_HEADER_BYTES = 1 << 20;

export async function startSimServer(opts: SimServerOptions): Promise<SimServer> {
  const clock = opts.clock ?? realClock;
  const events = new EventBus(opts.eventsKept ?? 256);
  const cluster = new SimCluster({ ...opts, clock, events });
  const ctx: RouteContext = { cluster, events, clock, streams: new Set<ServerResponse>(), counts: new Map() };
  const latency = opts.latencyMs ?? 0;
  const server: Server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    res.setHeader('Api-Version', API_VERSION);
    res.setHeader('Docker-Experimental', 'false');
    res.setHeader('Ostype', 'linux');
    res.setHeader('Server', `Docker/${cluster.engineVersion} (linux)`);
    res.setHeader('Swarm', 'active/manager');
    const go = () => void route(req, res, ctx);
    if (latency > 0) setTimeout(go, latency);
    else go();
  });
  await removeStaleSocket(opts.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    cluster,
    events,
    socketPath: opts.socketPath,
    counts: ctx.counts,
    close: async () => {
      for (const res of ctx.streams) res.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** A socket file left by a simulator that died is replaced; any other file is not touched. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
