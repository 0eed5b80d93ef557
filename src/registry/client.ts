import { createHash } from 'node:crypto';
import pRetry from 'p-retry';
import { basicAuthorization, parseChallenge, tokenFromAnswer, tokenRequest } from './auth.js';
import { CredentialHelperError } from './credential-helper.js';
import type { CredentialLookup, RegistryCredential } from './credentials.js';
import { errorKindForStatus, RegistryError } from './errors.js';
import { apiHost, parseImageReference, tagOf, type ImageReference } from './reference.js';

/** Every manifest kind a tag may point at: Docker manifest lists and v2 manifests, OCI indexes and manifests. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
];
const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

export interface RegistryClientOptions {
  credentials?: CredentialLookup;
  /** Registries spoken to over plain http (`host:port`), as dockerd's `--insecure-registry`; loopback always is. */
  insecure?: string[];
  /** Deadline of one HTTP request. */
  timeoutMs?: number;
  /** Further attempts of a call that failed in a way that may pass (no answer, 5xx, 429). */
  retries?: number;
  minRetryDelayMs?: number;
  fetch?: typeof fetch;
}

/**
 * A client of the Registry HTTP API v2: what a tag points at (the manifest digest), and tagging a
 * digest (a manifest PUT). Anonymous, basic or bearer-token auth as the registry asks, with the
 * credentials of Docker's config.json. Each call is retried a few times when it may pass; its
 * final failure is a RegistryError that says which kind it was.
 */
export class RegistryClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly o: RegistryClientOptions = {}) {
    this.fetch = o.fetch ?? globalThis.fetch;
  }

  /** The digest (`sha256:…`) of the manifest `ref`'s tag points at now. A pinned reference is its own answer. */
  async resolveDigest(ref: string): Promise<string> {
    const image = parseImageReference(ref);
    if (image.digest) return image.digest;
    const operation = `resolve ${ref}`;
    return this.retrying(operation, async () => {
      const url = this.manifestUrl(image, tagOf(image));
      const head = await this.request(operation, image, 'pull', url, { method: 'HEAD', headers: { Accept: ACCEPT } });
      const digest = head.headers.get('docker-content-digest');
      if (digest) return digest;
      // Some registries leave the header off a HEAD: the digest of the body is the same thing.
      const get = await this.request(operation, image, 'pull', url, { method: 'GET', headers: { Accept: ACCEPT } });
      const body = Buffer.from(await get.arrayBuffer());
      return get.headers.get('docker-content-digest') ?? `sha256:${createHash('sha256').update(body).digest('hex')}`;
    });
  }

  /** Points `tag` of `repository`'s repository at the manifest `digest` (the registry keeps it byte for byte). */
  async tagDigest(repository: string, digest: string, tag: string): Promise<void> {
    const image = parseImageReference(repository);
    const operation = `tag ${image.registry}/${image.repository}@${digest} as ${tag}`;
    await this.retrying(operation, async () => {
      const got = await this.request(operation, image, 'pull,push', this.manifestUrl(image, digest), { method: 'GET', headers: { Accept: ACCEPT } });
      const contentType = got.headers.get('content-type') ?? MANIFEST_MEDIA_TYPES[1]!;
      const body = Buffer.from(await got.arrayBuffer());
      await this.request(operation, image, 'pull,push', this.manifestUrl(image, tag), { method: 'PUT', headers: { 'Content-Type': contentType }, body });
    });
  }

  private manifestUrl(image: ImageReference, reference: string): string {
    const host = apiHost(image);
    return `${this.isInsecure(host) ? 'http' : 'https'}://${host}/v2/${image.repository}/manifests/${reference}`;
  }

  private isInsecure(host: string): boolean {
    const name = host.replace(/:\d+$/, '');
    return name === 'localhost' || name.startsWith('127.') || (this.o.insecure ?? []).includes(host);
  }

  private async retrying<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return pRetry(call, {
      retries: this.o.retries ?? 2,
      minTimeout: this.o.minRetryDelayMs ?? 200,
      maxTimeout: 2_000,
      shouldRetry: ({ error }) => error instanceof RegistryError && error.recoverable,
    }).catch((err: unknown) => {
      throw err instanceof RegistryError ? err : new RegistryError(operation, 'unreachable', String(err), { cause: err });
    });
  }

  /** One request, answering an auth challenge once; a non-2xx answer throws. */
  private async request(operation: string, image: ImageReference, actions: string, url: string, init: RequestInit): Promise<Response> {
    let res = await this.send(operation, url, init);
    if (res.status === 401) {
      const authorization = await this.authorize(operation, image, actions, res.headers.get('www-authenticate'));
      if (authorization) res = await this.send(operation, url, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: authorization } });
    }
    if (!res.ok) {
      const detail = await res.text().catch(() => '');
      throw new RegistryError(operation, errorKindForStatus(res.status), `HTTP ${res.status} from ${url}${detail ? `: ${detail.trim().slice(0, 200)}` : ''}`, { status: res.status });
    }
    return res;
  }

  private async authorize(operation: string, image: ImageReference, actions: string, header: string | null): Promise<string | undefined> {
    const challenge = parseChallenge(header);
    if (!challenge) return undefined;
    const credential = await this.credentialFor(operation, image.registry);
    if (challenge.scheme === 'basic') return basicAuthorization(credential);
    const { url, init } = tokenRequest(challenge, `repository:${image.repository}:${actions}`, credential);
    const res = await this.send(operation, url, init);
    if (!res.ok) throw new RegistryError(operation, errorKindForStatus(res.status), `token server ${url}: HTTP ${res.status}`, { status: res.status });
    const token = tokenFromAnswer(await res.json().catch(() => undefined));
    if (!token) throw new RegistryError(operation, 'rejected', `token server ${url} answered without a token`);
    return `Bearer ${token}`;
  }

  /** A credential helper that fails is a refusal to say who berth is: unauthorized, not worth a retry. */
  private async credentialFor(operation: string, registry: string): Promise<RegistryCredential | undefined> {
    try {
      return await this.o.credentials?.(registry);
    } catch (err) {
      if (err instanceof CredentialHelperError) throw new RegistryError(operation, 'unauthorized', err.message, { cause: err });
      throw err;
    }
  }

  private async send(operation: string, url: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetch(url, { ...init, redirect: 'follow', signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new RegistryError(operation, 'unreachable', `${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
    }
  }
}
