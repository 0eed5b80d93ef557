import type { RegistryCredential } from './credentials.js';

/** A parsed `WWW-Authenticate` header: the scheme and its parameters. */
export interface AuthChallenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

export function parseChallenge(header: string | null): AuthChallenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  for (const [, key, quoted, bare] of m[2]!.matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) params[key!.toLowerCase()] = quoted ?? bare ?? '';
  return { scheme, params };
}

export function basicAuthorization(credential: RegistryCredential | undefined): string | undefined {
  if (!credential || !('username' in credential)) return undefined;
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

/**
 * The request that asks the token server for a bearer token (Docker's token auth): a GET with
 * the user's basic credentials, or, with an identity token from `docker login`, the OAuth2
 * refresh-token POST. `scope` is what the call needs (`repository:web:pull`).
 */
export function tokenRequest(challenge: AuthChallenge, scope: string, credential: RegistryCredential | undefined): { url: string; init: RequestInit } {
  const realm = challenge.params.realm;
  if (!realm) throw new Error('bearer challenge without a realm');
  const service = challenge.params.service;
  if (credential && 'identityToken' in credential) {
    const body = new URLSearchParams({ grant_type: 'refresh_token', client_id: 'berth', refresh_token: credential.identityToken, scope, ...(service ? { service } : {}) });
    return { url: realm, init: { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: body.toString() } };
  }
  const url = new URL(realm);
  if (service) url.searchParams.set('service', service);
  url.searchParams.set('scope', scope);
  const authorization = basicAuthorization(credential);
  return { url: url.toString(), init: { method: 'GET', headers: authorization ? { Authorization: authorization } : {} } };
}

/** The token in a token server's answer (`token`, or OAuth2's `access_token`). */
export function tokenFromAnswer(body: unknown): string | undefined {
  const b = body as { token?: unknown; access_token?: unknown } | null;
  const token = b?.token ?? b?.access_token;
  return typeof token === 'string' && token.length > 0 ? token : undefined;
}
