import { createHash } from 'node:crypto';
import { ConflictError, InvalidInputError, InvalidStoredResourceError } from '../api/errors.js';
import { KINDS, parseResource, type Kind, type Resource } from '../api/resource.js';
import type { EtcdClient } from './client.js';
import { parseResourceKey, resourceKey, resourcePrefix } from './keys.js';
import { canonicalJson } from '../util/canonical-json.js';

export type ApplyResult = 'created' | 'configured' | 'unchanged';

export interface ApplyOutcome<R extends Resource = Resource> {
  result: ApplyResult;
  resource: R;
}

export interface StoredResource<R extends Resource = Resource> {
  resource: R;
  /** etcd mod_revision of the key: the compare-and-swap token. */
  modRevision: string;
}

/** A group still referenced by environments; `berth delete group --force` overrides. */
export class GroupInUseError extends ConflictError {
  readonly environments: string[];
  constructor(group: string, environments: string[]) {
    super(
      `environmentgroup "${group}" is still used by environment${environments.length > 1 ? 's' : ''} ${environments.join(', ')}: delete ${environments.length > 1 ? 'them' : 'it'} first, or use --force`,
    );
    this.environments = environments;
  }
}

const MAX_CAS_ATTEMPTS = 50;

/** The hash `metadata.specHash` records: of the spec as canonical JSON. */
export function resourceSpecHash(spec: unknown): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 16);
}

/**
 * The resource as stored at `modRevision`, with the generation its spec really has. `berth apply`
 * records the hash of the spec that its generation counts; a spec that does not match it (or a
 * value with no hash or generation at all) was written raw — etcdctl, confd-era tooling, a berth
 * from before the hash — and its generation is the key's mod_revision. etcd revisions only grow
 * and every apply is a write, so that number is above any generation the key had: generation,
 * and with it `observedGeneration`, still only ever rises.
 */
export function withStoredGeneration<R extends Resource>(resource: R, modRevision: string): R {
  const { generation, specHash } = resource.metadata;
  if (generation !== undefined && specHash === resourceSpecHash(resource.spec)) return resource;
  return { ...resource, metadata: { ...resource.metadata, generation: Number(modRevision) } };
}

/**
 * What storing `next` over `current` means. Pure: the store and the tests share it.
 * - no current: created, generation 1, creationTimestamp now
 * - spec differs: configured, generation + 1
 * - only labels/annotations differ: configured, same generation
 * - otherwise unchanged
 * What the user wrote in generation / creationTimestamp / specHash / deletionTimestamp is
 * ignored; specHash is set to the stored spec's. A resource marked for deletion cannot be changed
 * (as in Kubernetes): apply it again once it is gone.
 */
export function planApply<R extends Resource>(current: R | undefined, next: R, now: Date): ApplyOutcome<R> {
  const userMeta = { ...next.metadata };
  delete userMeta.generation;
  delete userMeta.creationTimestamp;
  delete userMeta.deletionTimestamp;
  userMeta.specHash = resourceSpecHash(next.spec);
  if (current?.metadata.deletionTimestamp) {
    throw new ConflictError(`${current.kind.toLowerCase()} "${current.metadata.name}" is being deleted (since ${current.metadata.deletionTimestamp}): apply it again once it is gone`);
  }
  if (!current) {
    return {
      result: 'created',
      resource: { ...next, metadata: { ...userMeta, generation: 1, creationTimestamp: now.toISOString() } },
    };
  }
  const specChanged = canonicalJson(current.spec) !== canonicalJson(next.spec);
  const metaChanged =
    canonicalJson(current.metadata.labels ?? {}) !== canonicalJson(next.metadata.labels ?? {}) ||
    canonicalJson(current.metadata.annotations ?? {}) !== canonicalJson(next.metadata.annotations ?? {});
  if (!specChanged && !metaChanged) return { result: 'unchanged', resource: current };
  const generation = (current.metadata.generation ?? 1) + (specChanged ? 1 : 0);
  const metadata = { ...userMeta, generation, creationTimestamp: current.metadata.creationTimestamp ?? now.toISOString() };
  return { result: 'configured', resource: { ...next, metadata } };
}

/** Reads a stored value back through the kind's schema. */
export function decodeResource(kind: Kind, key: string, value: string): Resource {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch (err) {
    throw new InvalidInputError([{ path: '', message: `not JSON: ${(err as Error).message}` }], { file: `etcd:${key}`, document: 1 });
  }
  const result = KINDS[kind].schema.safeParse(json);
  if (!result.success) {
    throw new InvalidInputError(
      result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      { file: `etcd:${key}`, document: 1 },
    );
  }
  return result.data;
}

const jitter = (attempt: number) => new Promise((r) => setTimeout(r, Math.random() * Math.min(5 * attempt, 50)));

/**
 * EnvironmentGroups and Environments in etcd. Values are the validated resource as JSON (with
 * defaults filled in). Every write is a compare-and-swap on the key's mod_revision, retried on
 * conflict, so concurrent writers never lose an update.
 */
export class ResourceStore {
  constructor(private readonly client: EtcdClient) {}

  get prefix(): string {
    return this.client.prefix;
  }

  async getStored<K extends Kind>(kind: K, name: string): Promise<StoredResource<Extract<Resource, { kind: K }>> | undefined> {
    const key = resourceKey(this.prefix, kind, name);
    const res = await this.client.call(`get ${key}`, () => this.client.etcd.get(key).exec());
    const kv = res.kvs[0];
    if (!kv) return undefined;
    let resource: Resource;
    try {
      resource = decodeResource(kind, key, kv.value.toString());
    } catch (err) {
      throw err instanceof InvalidInputError ? new InvalidStoredResourceError(err, kv.mod_revision) : err;
    }
    return { resource: withStoredGeneration(resource, kv.mod_revision) as Extract<Resource, { kind: K }>, modRevision: kv.mod_revision };
  }

  async get<K extends Kind>(kind: K, name: string): Promise<Extract<Resource, { kind: K }> | undefined> {
    return (await this.getStored(kind, name))?.resource;
  }

  /** All resources of a kind, sorted by name. */
  async list<K extends Kind>(kind: K): Promise<Extract<Resource, { kind: K }>[]> {
    return (await this.listAt(kind)).items as Extract<Resource, { kind: K }>[];
  }

  /**
   * All resources of a kind at one revision (the current one when `revision` is absent), with that
   * revision. A stored value that is not a valid resource throws, unless `onInvalid` is given: then
   * it is reported there and skipped, so one bad key cannot hide the others.
   */
  async listAt(kind: Kind, revision?: string, onInvalid?: (key: string, err: Error) => void): Promise<{ items: Resource[]; revision: string }> {
    const prefix = resourcePrefix(this.prefix, kind);
    const res = await this.client.call(`list ${prefix}`, () => {
      const b = this.client.etcd.getAll().prefix(prefix);
      if (revision !== undefined) b.revision(revision);
      return b.exec();
    });
    const items: Resource[] = [];
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      if (!parseResourceKey(this.prefix, key)) continue; // deeper keys are not resources
      try {
        items.push(withStoredGeneration(decodeResource(kind, key, kv.value.toString()), kv.mod_revision));
      } catch (err) {
        if (!onInvalid) throw err;
        onInvalid(key, err as Error);
      }
    }
    items.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
    return { items, revision: revision ?? res.header.revision };
  }

  /** Validated resource in, stored resource out. `dryRun` computes the result without writing. */
  async apply<R extends Resource>(resource: R, opts: { dryRun?: boolean; now?: () => Date } = {}): Promise<ApplyOutcome<R>> {
    const now = opts.now ?? (() => new Date());
    return this.casLoop(resource.kind, resource.metadata.name, (current) => planApply(current as R | undefined, resource, now()), opts.dryRun);
  }

  /**
   * Read-modify-write of an existing resource (`berth scale`). `mutate` returns the new
   * resource, which must pass the schema; generation rises when the spec changed.
   */
  async update<K extends Kind>(
    kind: K,
    name: string,
    mutate: (current: Extract<Resource, { kind: K }>) => Resource,
    opts: { dryRun?: boolean } = {},
  ): Promise<ApplyOutcome<Extract<Resource, { kind: K }>> | undefined> {
    let missing = false;
    const out = await this.casLoop(
      kind,
      name,
      (current) => {
        if (!current) {
          missing = true;
          return undefined;
        }
        const next = parseResource(mutate(current as Extract<Resource, { kind: K }>));
        return planApply(current, next, new Date());
      },
      opts.dryRun,
    );
    return missing ? undefined : (out as ApplyOutcome<Extract<Resource, { kind: K }>>);
  }

  private async casLoop<R extends Resource>(
    kind: Kind,
    name: string,
    plan: (current: Resource | undefined) => ApplyOutcome<R> | undefined,
    dryRun = false,
  ): Promise<ApplyOutcome<R>> {
    const key = resourceKey(this.prefix, kind, name);
    for (let attempt = 1; attempt <= MAX_CAS_ATTEMPTS; attempt++) {
      const stored = await this.getStored(kind, name);
      const outcome = plan(stored?.resource);
      if (!outcome) return undefined as never;
      if (outcome.result === 'unchanged' || dryRun) return outcome;
      const value = JSON.stringify(outcome.resource);
      const res = await this.client.call(`put ${key}`, () => {
        const txn = stored
          ? this.client.txn(key, 'Mod', '==', stored.modRevision)
          : this.client.txn(key, 'Create', '==', 0);
        return txn.then(this.client.etcd.put(key).value(value)).commit();
      });
      if (res.succeeded) return outcome;
      await this.client.checkFence(`put ${key}`);
      await jitter(attempt);
    }
    throw new ConflictError(`${kind} "${name}": gave up after ${MAX_CAS_ATTEMPTS} concurrent modifications`);
  }

  /**
   * Marks an environment for deletion (`metadata.deletionTimestamp`): the controller removes what
   * it owned, then its keys. Returns false when there is no such environment; marking a marked
   * one keeps the first mark.
   */
  async markDeleted(name: string, now: Date = new Date()): Promise<boolean> {
    let missing = false;
    await this.casLoop('Environment', name, (current) => {
      if (!current) {
        missing = true;
        return undefined;
      }
      if (current.metadata.deletionTimestamp) return { result: 'unchanged', resource: current };
      return { result: 'configured', resource: { ...current, metadata: { ...current.metadata, deletionTimestamp: now.toISOString() } } };
    });
    return !missing;
  }

  /**
   * Deletes a key at once; returns whether it existed. For environments, `berth delete` marks
   * instead (markDeleted) and the controller calls this once it removed what the environment owned. A group that environments still name in
   * `spec.group` is refused with GroupInUseError unless `force`. (The check and the delete are
   * two calls: an environment applied in between is left Pending by the controller.)
   */
  async delete(kind: Kind, name: string, opts: { force?: boolean } = {}): Promise<boolean> {
    if (kind === 'EnvironmentGroup' && !opts.force) {
      const users = (await this.list('Environment')).filter((e) => e.spec.group === name).map((e) => e.metadata.name);
      if (users.length > 0) throw new GroupInUseError(name, users);
    }
    const key = resourceKey(this.prefix, kind, name);
    return (await this.client.delete(`delete ${key}`, this.client.etcd.delete().key(key))) > 0;
  }
}
