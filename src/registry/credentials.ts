import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCredentialHelper, type CredentialHelperRunner } from './credential-helper.js';

/** What Docker's config.json (or a credential helper) holds for one registry. */
export type RegistryCredential = { username: string; password: string } | { identityToken: string };

/** Looks up the credential for a registry host (`10.77.0.1:5000`, `docker.io`). */
export type CredentialLookup = (registry: string) => Promise<RegistryCredential | undefined>;

interface DockerConfigAuth {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** The parts of Docker's config.json that say where credentials are. */
export interface DockerConfig {
  auths?: Record<string, DockerConfigAuth>;
  /** A credential helper for every registry (`docker-credential-<credsStore>`). */
  credsStore?: string;
  /** A credential helper per registry host; wins over credsStore. */
  credHelpers?: Record<string, string>;
}

/** `BERTH_REGISTRY_AUTH_FILE`, else `~/.docker/config.json` (as the docker CLI). */
export function defaultAuthFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.BERTH_REGISTRY_AUTH_FILE || path.join(os.homedir(), '.docker', 'config.json');
}

/**
 * The credentials of a Docker config.json. A missing file means no credentials (anonymous
 * pulls); a file that is not JSON is an error, not silently ignored.
 */
export function loadDockerCredentials(file: string, runHelper: CredentialHelperRunner = runCredentialHelper): CredentialLookup {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return async () => undefined;
    throw err;
  }
  let config: DockerConfig;
  try {
    config = JSON.parse(text) as DockerConfig;
  } catch (err) {
    throw new Error(`${file}: not JSON: ${(err as Error).message}`);
  }
  return credentialsFromConfig(config, runHelper);
}

/**
 * As the docker CLI: the registry's entry in `credHelpers`, else `credsStore`, runs that helper
 * (asked each time: helpers may hand out short-lived tokens); with neither, the `auths` entry.
 */
export function credentialsFromConfig(config: DockerConfig, runHelper: CredentialHelperRunner = runCredentialHelper): CredentialLookup {
  const byHost = new Map<string, RegistryCredential>();
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    const credential = toCredential(entry);
    if (credential) byHost.set(normaliseHost(key), credential);
  }
  const helpers = new Map(Object.entries(config.credHelpers ?? {}).map(([key, helper]) => [normaliseHost(key), helper]));
  return async (registry) => {
    const host = normaliseHost(registry);
    const helper = helpers.get(host) ?? config.credsStore;
    if (!helper) return byHost.get(host);
    // The docker CLI stores Docker Hub's credentials under the index's URL.
    return runHelper(helper, host === 'docker.io' ? 'https://index.docker.io/v1/' : host);
  };
}

function toCredential(entry: DockerConfigAuth): RegistryCredential | undefined {
  if (entry.identitytoken) return { identityToken: entry.identitytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}

/** `https://index.docker.io/v1/`, `docker.io` and `registry-1.docker.io` are one registry; a scheme or path is dropped. */
function normaliseHost(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}
