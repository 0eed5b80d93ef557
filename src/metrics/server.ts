import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export interface HealthProbe {
  /** /readyz: leader elected (or standing by as a follower) and sources synced. */
  ready(): boolean;
  /** /healthz: why the work loop is stalled (answered 500 with the reason), or undefined. */
  stalled?(): string | undefined;
}

/** Parses `--metrics-addr`: `:9464`, `127.0.0.1:9464`, `[::1]:9464`. */
export function parseListenAddr(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`invalid listen address "${addr}": expected [host]:port`);
  const host = m[1] ?? (m[2] || undefined);
  return { host, port: Number(m[3]) };
}

/**
 * /metrics, /healthz (the process answers and its work loop progresses), /readyz (see
 * HealthProbe), and the handlers of `extra` by path (the controller's registry notifications).
 */
export async function startMetricsServer(addr: string, registry: Registry, probe: HealthProbe, extra: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {}): Promise<Server> {
  const { host, port } = parseListenAddr(addr);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const handler = Object.hasOwn(extra, path) ? extra[path] : undefined;
    if (handler) handler(req, res);
    else if (path === '/metrics') {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
    } else if (path === '/healthz') {
      const stalled = probe.stalled?.();
      res.writeHead(stalled ? 500 : 200, { 'content-type': 'text/plain' });
      res.end(stalled ? `stalled: ${stalled}\n` : 'ok\n');
    } else if (path === '/readyz') {
      const ok = probe.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not ready\n');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
