import http from 'node:http';
import type { Color } from '../../api/status.js';
import type { ProbeResult } from './decide.js';

/**
 * The controller's pre-promotion check for a `probe` step: one HTTP GET of `path` on every
 * endpoint; the colour passes when every endpoint answers 2xx or 3xx within `timeoutMs`.
 */
export async function probeEndpoints(
  color: Color,
  endpoints: string[],
  opts: { path?: string; timeoutMs?: number; now?: () => Date } = {},
): Promise<ProbeResult> {
  const failures: string[] = [];
  await Promise.all(
    endpoints.map(async (ep) => {
      const err = await getOnce(ep, opts.path ?? '/', opts.timeoutMs ?? 2_000);
      if (err) failures.push(`${ep}: ${err}`);
    }),
  );
  const at = (opts.now ?? (() => new Date()))().toISOString();
  return {
    color,
    endpoints: [...endpoints],
    ok: endpoints.length > 0 && failures.length === 0,
    at,
    ...(failures.length > 0 ? { message: failures.sort().join('; ') } : endpoints.length === 0 ? { message: 'no endpoints' } : {}),
  };
}

function getOnce(endpoint: string, path: string, timeoutMs: number): Promise<string | undefined> {
  const i = endpoint.lastIndexOf(':');
  return new Promise((resolve) => {
    const req = http.get({ host: endpoint.slice(0, i), port: Number(endpoint.slice(i + 1)), path, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400 ? undefined : `HTTP ${code}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve(e.message));
  });
}
