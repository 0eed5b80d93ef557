/**
 * The X-Registry-Auth Swarm gets with a service create or update, so that it hands the
 * credentials to the nodes that pull the image. The credentials are the ones berth resolves
 * digests with (registry/credentials.ts: Docker's config.json and its credential helpers).
 */
import type { CredentialLookup } from '../registry/credentials.js';
import { parseImageReference } from '../registry/reference.js';

export interface RegistryAuth {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
}

/** The credentials for `image`'s registry, if the config has them. */
export async function authFor(credentials: CredentialLookup, image: string): Promise<RegistryAuth | undefined> {
  const registry = parseImageReference(image).registry;
  const c = await credentials(registry);
  if (!c) return undefined;
  return 'identityToken' in c ? { identitytoken: c.identityToken, serveraddress: registry } : { username: c.username, password: c.password, serveraddress: registry };
}
