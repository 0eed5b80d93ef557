import { InvalidStoredValueError } from '../api/errors.js';
import { environmentStatusSchema, groupStatusSchema, type EnvironmentStatus, type GroupStatus } from '../api/status.js';
import { parseWith, type Kind } from '../api/resource.js';
import type { EtcdClient } from './client.js';
import { statusKey, statusPrefix } from './keys.js';

export type StatusOf<K extends Kind> = K extends 'Environment' ? EnvironmentStatus : GroupStatus;

const SCHEMAS = { Environment: environmentStatusSchema, EnvironmentGroup: groupStatusSchema } as const;

/**
 * Status beside each resource, under `<prefix>/status/<plural>/<name>`. Only the controller
 * writes it (one writer, the leader; its client fences every write). Deleting a resource does NOT
 * delete its status: the controller removes the status with `deleteStatus` once it has cleaned
 * up what the resource owned, so `berth get` can show `Terminating` meanwhile.
 */
export class StatusStore {
  constructor(private readonly client: EtcdClient) {}

  /**
   * The status, or undefined when the key does not exist. Anything else is an error: etcd not
   * answering (AdapterError), or a stored value that is not a status (InvalidStoredValueError).
   */
  async getStatus<K extends Kind>(kind: K, name: string): Promise<StatusOf<K> | undefined> {
    const key = statusKey(this.client.prefix, kind, name);
    const value = await this.client.call(`get ${key}`, () => this.client.etcd.get(key).string());
    if (value === null) return undefined;
    return decodeStatus(kind, key, value);
  }

  /** Every status of a kind, by resource name. A value that is not a status is reported to `onInvalid` and left out. */
  async listStatuses<K extends Kind>(kind: K, onInvalid: (err: InvalidStoredValueError) => void = () => {}): Promise<Map<string, StatusOf<K>>> {
    const prefix = statusPrefix(this.client.prefix, kind);
    const all = await this.client.call(`list ${prefix}`, () => this.client.etcd.getAll().prefix(prefix).strings());
    const out = new Map<string, StatusOf<K>>();
    for (const [key, value] of Object.entries(all)) {
      const name = key.slice(prefix.length);
      if (name.includes('/')) continue;
      try {
        out.set(name, decodeStatus(kind, key, value));
      } catch (err) {
        if (!(err instanceof InvalidStoredValueError)) throw err;
        onInvalid(err);
      }
    }
    return out;
  }

  /** The names that have a status key, whatever its value. */
  listStatusNames(kind: Kind): Promise<string[]> {
    return this.client.names(statusPrefix(this.client.prefix, kind));
  }

  async putStatus<K extends Kind>(kind: K, name: string, status: StatusOf<K>): Promise<void> {
    const key = statusKey(this.client.prefix, kind, name);
    const valid = parseWith(SCHEMAS[kind] as never, status, `status of ${name}`);
    await this.client.putTogether(key, JSON.stringify(valid));
  }

  /** Returns whether a status existed. */
  async deleteStatus(kind: Kind, name: string): Promise<boolean> {
    const key = statusKey(this.client.prefix, kind, name);
    return (await this.client.delete(`delete ${key}`, this.client.etcd.delete().key(key))) > 0;
  }
}

function decodeStatus<K extends Kind>(kind: K, key: string, value: string): StatusOf<K> {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch (err) {
    throw new InvalidStoredValueError(key, `not JSON: ${(err as Error).message}`, err);
  }
  const parsed = SCHEMAS[kind].safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ');
    throw new InvalidStoredValueError(key, problems, parsed.error);
  }
  return parsed.data as StatusOf<K>;
}
