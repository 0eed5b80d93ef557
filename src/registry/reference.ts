/**
 * Image references as Docker reads them (distribution/reference): `[host[:port]/]path[:tag][@digest]`.
 * The first path component is a registry host only when it looks like one (a dot, a port, or
 * `localhost`); otherwise the image lives on Docker Hub, under `library/` when it has one component.
 */
export interface ImageReference {
  /** Registry host as written (`10.77.0.1:5000`), or `docker.io`. */
  registry: string;
  /** Repository path inside the registry (`web`, `library/nginx`). */
  repository: string;
  tag?: string;
  /** `sha256:<hex>` when the reference is pinned already. */
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

export function parseImageReference(ref: string): ImageReference {
  const at = ref.indexOf('@');
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  if (digest !== undefined && !DIGEST_PATTERN.test(digest)) throw new Error(`invalid digest in image reference "${ref}"`);
  const named = at >= 0 ? ref.slice(0, at) : ref;
  const slash = named.indexOf('/');
  const first = slash >= 0 ? named.slice(0, slash) : '';
  const hasHost = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = hasHost ? first : DOCKER_HUB;
  let path = hasHost ? named.slice(slash + 1) : named;
  // A tag's colon comes after the last slash; a port's colon is in the host, already removed.
  const colon = path.lastIndexOf(':');
  const tag = colon > path.lastIndexOf('/') ? path.slice(colon + 1) : undefined;
  if (tag !== undefined) path = path.slice(0, colon);
  if (!path) throw new Error(`invalid image reference "${ref}"`);
  const repository = registry === DOCKER_HUB && !path.includes('/') ? `library/${path}` : path;
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** The host the Registry HTTP API answers on for this reference's registry. */
export function apiHost(ref: Pick<ImageReference, 'registry'>): string {
  return ref.registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : ref.registry;
}

/** The tag a reference names: its own, or `latest` as Docker assumes. */
export function tagOf(ref: ImageReference): string {
  return ref.tag ?? 'latest';
}

/** `ref` as written, its digest (if any) replaced by `digest`: `repo:tag@sha256:…`, what Swarm runs. */
export function pinnedReference(ref: string, digest: string): string {
  if (!DIGEST_PATTERN.test(digest)) throw new Error(`invalid digest "${digest}"`);
  const at = ref.indexOf('@');
  return `${at >= 0 ? ref.slice(0, at) : ref}@${digest}`;
}

/** The reference without a digest: `repo:tag`, or the repository alone. */
export function unpinnedReference(ref: string): string {
  const at = ref.indexOf('@');
  return at >= 0 ? ref.slice(0, at) : ref;
}

/** The reference without tag or digest: the repository as written (`10.77.0.1:5000/web`). */
export function repositoryOf(ref: string): string {
  const named = unpinnedReference(ref);
  const colon = named.lastIndexOf(':');
  return colon > named.lastIndexOf('/') ? named.slice(0, colon) : named;
}
