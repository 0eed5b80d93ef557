import type { Kind, KindPlural } from '../api/resource.js';
import { KINDS } from '../api/resource.js';

/**
 * etcd key layout (docs/keys.md):
 *   <prefix>/groups/<name>, <prefix>/environments/<name>                 the resource as JSON
 *   <prefix>/status/groups/<name>, <prefix>/status/environments/<name>   its status as JSON
 */
export function plural(kind: Kind): KindPlural {
  return KINDS[kind].plural;
}

export function kindFromPlural(p: string): Kind | undefined {
  if (p === 'groups') return 'EnvironmentGroup';
  if (p === 'environments') return 'Environment';
  return undefined;
}

export function resourcePrefix(prefix: string, kind: Kind): string {
  return `${prefix}/${plural(kind)}/`;
}

/**
 * Both kinds' keys as one span, for a watch of every group and environment: from the first
 * environment key to past the last group key (`environments/` sorts before `groups/`). The
 * prefix as a whole would bring every status write and route write of the controller back to it.
 */
export function resourcesSpan(prefix: string): { prefix: string; end: string } {
  return { prefix: resourcePrefix(prefix, 'Environment'), end: `${prefix}/${plural('EnvironmentGroup')}0` };
}

export function resourceKey(prefix: string, kind: Kind, name: string): string {
  return `${resourcePrefix(prefix, kind)}${name}`;
}

export function statusPrefix(prefix: string, kind: Kind): string {
  return `${prefix}/status/${plural(kind)}/`;
}

export function statusKey(prefix: string, kind: Kind, name: string): string {
  return `${statusPrefix(prefix, kind)}${name}`;
}

/** The kind and name of a resource key, or undefined for any other key under the prefix. */
export function parseResourceKey(prefix: string, key: string): { kind: Kind; name: string } | undefined {
  if (!key.startsWith(`${prefix}/`)) return undefined;
  const rest = key.slice(prefix.length + 1).split('/');
  if (rest.length !== 2) return undefined;
  const kind = kindFromPlural(rest[0] ?? '');
  const name = rest[1] ?? '';
  if (!kind || name === '') return undefined;
  return { kind, name };
}
