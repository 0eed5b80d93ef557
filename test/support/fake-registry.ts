/**
 * A tiny Registry HTTP API v2 on loopback for the registry client's unit tests: manifests by tag
 * and digest, HEAD/GET/PUT, and the auth a registry may ask for (none, basic, bearer tokens from
 * its own token endpoint). Every request is recorded.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRegistryOptions {
  auth?: 'none' | 'basic' | 'bearer';
  user?: string;
  password?: string;
  /** Answer the next N manifest requests with 503. */
  failNext?: number;
  /** Leave Docker-Content-Digest off HEAD answers. */
  noDigestOnHead?: boolean;
}

export interface FakeRegistry {
  host: string;
  requests: { method: string; url: string; authorization?: string }[];
  /** Stores a manifest under `repo:tag`; returns its digest. */
  push(repo: string, tag: string, content: string, mediaType?: string): string;
  digestOf(repo: string, tag: string): string | undefined;
  options: FakeRegistryOptions;
  close(): Promise<void>;
}

const V2 = 'application/vnd.docker.distribution.manifest.v2+json';

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const blobs = new Map<string, { body: Buffer; mediaType: string }>();
  const tags = new Map<string, string>();
  const requests: FakeRegistry['requests'] = [];
  const token = 'tok-' + Math.random().toString(36).slice(2);
  const basic = `Basic ${Buffer.from(`${options.user ?? 'u'}:${options.password ?? 'p'}`).toString('base64')}`;
  let host = '';

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    requests.push({ method: req.method ?? '', url: url.pathname + url.search, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (url.pathname === '/token') {
        if (req.headers.authorization !== basic) return void res.writeHead(401).end();
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, scope: url.searchParams.get('scope') }));
        return;
      }
      const auth = options.auth ?? 'none';
      if (auth === 'basic' && req.headers.authorization !== basic) {
        return void res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fake"' }).end();
      }
      if (auth === 'bearer' && req.headers.authorization !== `Bearer ${token}`) {
        return void res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${host}/token",service="fake",scope="x"` }).end();
      }
      const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
      if (!m) return void res.writeHead(404).end();
      if ((options.failNext ?? 0) > 0) {
        options.failNext!--;
        return void res.writeHead(503).end('busy');
      }
      const [, repo, reference] = m as unknown as [string, string, string];
      if (req.method === 'PUT') {
        const body = Buffer.concat(chunks);
        const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
        blobs.set(digest, { body, mediaType: String(req.headers['content-type']) });
        if (!reference.startsWith('sha256:')) tags.set(`${repo}:${reference}`, digest);
        return void res.writeHead(201, { 'Docker-Content-Digest': digest }).end();
      }
      const digest = reference.startsWith('sha256:') ? reference : tags.get(`${repo}:${reference}`);
      const blob = digest && blobs.get(digest);
      if (!digest || !blob) return void res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
      const headers: Record<string, string> = { 'Content-Type': blob.mediaType, 'Content-Length': String(blob.body.length) };
      if (req.method === 'GET' || !options.noDigestOnHead) headers['Docker-Content-Digest'] = digest;
      res.writeHead(200, headers).end(req.method === 'GET' ? blob.body : undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    requests,
    options,
    push(repo, tag, content, mediaType = V2) {
      const body = Buffer.from(content);
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      blobs.set(digest, { body, mediaType });
      tags.set(`${repo}:${tag}`, digest);
      return digest;
    },
    digestOf: (repo, tag) => tags.get(`${repo}:${tag}`),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
