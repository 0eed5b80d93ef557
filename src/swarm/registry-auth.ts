/**
 * Registry credentials in Docker's config.json format (BERTH_REGISTRY_AUTH_FILE, default
 * ~/.docker/config.json), sent as X-Registry-Auth with service create/update so that Swarm
 * hands them to the nodes that pull the image. Credential helpers (`credsStore`) are not read.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

/** The config file's `auths`: registry host → base64 "user:password". */
export type RegistryAuths = Map<string, string>;

const DOCKER_HUB = 'docker.io';
/** Hosts under which config files name Docker Hub (`https://index.docker.io/v1/` is the usual key). */
const HUB_HOSTS = ['index.docker.io', 'docker.io', 'registry-1.docker.io'];

/** The registry host of an image reference (`10.77.0.1:5000/web:v1` → `10.77.0.1:5000`, `nginx` → docker.io). */
export function registryOf(image: string): string {
  const first = image.split('/')[0]!;
  if (!image.includes('/') || !(first.includes('.') || first.includes(':') || first === 'localhost')) return DOCKER_HUB;
  return first;
}

/** A config key may be a URL (`https://host/v1/`) or a bare host. */
function hostOfKey(key: string): string {
  const host = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return HUB_HOSTS.includes(host) ? DOCKER_HUB : host;
}

export function parseRegistryAuths(text: string, file: string): RegistryAuths {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON (${(err as Error).message})`);
  }
  const auths = (doc as { auths?: Record<string, { auth?: unknown }> } | null)?.auths ?? {};
  const out: RegistryAuths = new Map();
  for (const [key, entry] of Object.entries(auths)) {
    if (typeof entry?.auth === 'string' && entry.auth !== '') out.set(hostOfKey(key), entry.auth);
  }
  return out;
}

/** The credentials for `image`'s registry, if the file has them. */
export function authFor(auths: RegistryAuths, image: string): RegistryAuth | undefined {
  const registry = registryOf(image);
  const encoded = auths.get(registry);
  if (!encoded) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: registry };
}

/**
 * Reads the auth file named by BERTH_REGISTRY_AUTH_FILE (it must exist), or the default
 * ~/.docker/config.json when present; no file means no credentials.
 */
export function loadRegistryAuths(env: NodeJS.ProcessEnv = process.env): RegistryAuths {
  const named = env.BERTH_REGISTRY_AUTH_FILE;
  const file = named || path.join(env.HOME || os.homedir(), '.docker', 'config.json');
  if (!named && !fs.existsSync(file)) return new Map();
  return parseRegistryAuths(fs.readFileSync(file, 'utf8'), file);
}
