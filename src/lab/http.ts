/** A tiny bounded HTTP(S) GET for readiness checks; `ca` is the CA an https server's certificate is checked against. */
import http from 'node:http';
import https from 'node:https';

export function httpGet(url: string, timeoutMs = 5_000, headers: Record<string, string> = {}, ca?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? (u: string, o: https.RequestOptions, cb: (res: http.IncomingMessage) => void) => https.get(u, { ...o, ca }, cb) : http.get;
    const req = get(url, { timeout: timeoutMs, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
