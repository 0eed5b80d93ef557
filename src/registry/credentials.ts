import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What Docker's config.json holds for one registry. */
export type RegistryCredential = { username: string; password: string } | { identityToken: string };

/** Looks up the credential for a registry host (`10.77.0.1:5000`, `docker.io`). */
export type CredentialLookup = (registry: string) => RegistryCredential | undefined;

interface DockerConfigAuth {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** `BERTH_REGISTRY_AUTH_FILE`, else `~/.docker/config.json` (as the docker CLI). */
export function defaultAuthFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.BERTH_REGISTRY_AUTH_FILE || path.join(os.homedir(), '.docker', 'config.json');
}

/**
 * The `auths` of a Docker config.json. A missing file means no credentials (anonymous pulls);
 * a file that is not JSON is an error, not silently ignored. Credential helpers (`credsStore`,
 * `credHelpers`) are not run: berth reads the file only.
 */
export function loadDockerCredentials(file: string): CredentialLookup {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return () => undefined;
    throw err;
  }
  return credentialsFromConfig(JSON.parse(text) as { auths?: Record<string, DockerConfigAuth> });
}

export function credentialsFromConfig(config: { auths?: Record<string, DockerConfigAuth> }): CredentialLookup {
  const byHost = new Map<string, RegistryCredential>();
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    const credential = toCredential(entry);
    if (credential) byHost.set(normaliseHost(key), credential);
  }
  return (registry) => byHost.get(normaliseHost(registry));
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
