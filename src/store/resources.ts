import { createHash } from 'node:crypto';
import { ConflictError, InvalidInputError, InvalidStoredResourceError } from '../api/errors.js';
import { KINDS, parseResource, type Kind, type Resource } from '../api/resource.js';
import type { IKeyValue } from 'etcd3';
import type { EtcdClient } from './client.js';
import { parseResourceKey, resourceKey, resourcePrefix } from './keys.js';
import { canonicalJson } from '../util/canonical-json.js';
import { chunksOf, roundsById } from '../util/chunks.js';
import { forEachLimited } from '../util/limited.js';

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

/**
 * Resources per transaction of `applyMany`: etcd refuses a transaction of over 128 compares or
 * operations (--max-txn-ops), and a fenced client adds a compare of its own.
 */
const APPLY_CHUNK_RESOURCES = 100;
/**
 * Bytes of resources (their keys, twice, and their JSON as given) per chunk of `applyMany`. etcd
 * refuses a request over 1.5 MiB (--max-request-bytes): what is written is the resource given
 * plus its metadata's generation, creationTimestamp and specHash (under 150 bytes each), well
 * inside the margin. The chunk's read returns what is stored, about as big, and the client takes
 * responses of up to 4 MiB.
 */
const APPLY_CHUNK_BYTES = 1024 * 1024;
/** Chunks of `applyMany` on their way at once. */
const APPLY_CHUNKS_IN_FLIGHT = 4;
/** Resources of a chunk whose write failed applied again one by one, at most this many at once. */
const APPLY_CHUNK_RETRIES_IN_FLIGHT = 16;

type Settled<T> = { outcome: T } | { error: unknown };

/** A put that lands only if its key is still at `modRevision` (absent, when undefined). */
interface GuardedPut {
  key: string;
  value: string;
  modRevision: string | undefined;
}

/** What a call on several keys is named in errors: `get 100 keys: /berth/environments/a, …`. */
const keysOperation = (verb: string, keys: string[]) => (keys.length === 1 ? `${verb} ${keys[0]}` : `${verb} ${keys.length} keys: ${keys[0]}, …`);

/** The hash `metadata.specHash` records: of the spec as canonical JSON. */
export function resourceSpecHash(spec: unknown): string {
  return hashOfCanonical(canonicalJson(spec));
}

function hashOfCanonical(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
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
  const nextSpec = canonicalJson(next.spec);
  userMeta.specHash = hashOfCanonical(nextSpec);
  if (current?.metadata.deletionTimestamp) {
    throw new ConflictError(`${current.kind.toLowerCase()} "${current.metadata.name}" is being deleted (since ${current.metadata.deletionTimestamp}): apply it again once it is gone`);
  }
  if (!current) {
    return {
      result: 'created',
      resource: { ...next, metadata: { ...userMeta, generation: 1, creationTimestamp: now.toISOString() } },
    };
  }
  const specChanged = canonicalJson(current.spec) !== nextSpec;
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

/** A key's value read back as the resource it stores; a value that is not one throws InvalidStoredResourceError. */
function storedResource(kind: Kind, key: string, kv: IKeyValue): StoredResource {
  let resource: Resource;
  try {
    resource = decodeResource(kind, key, kv.value.toString());
  } catch (err) {
    throw err instanceof InvalidInputError ? new InvalidStoredResourceError(err, kv.mod_revision) : err;
  }
  return { resource: withStoredGeneration(resource, kv.mod_revision), modRevision: kv.mod_revision };
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
    return kv ? (storedResource(kind, key, kv) as StoredResource<Extract<Resource, { kind: K }>>) : undefined;
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
   * `apply` of many resources in few round trips, one outcome each in input order: the same
   * outcomes, stored as safely (each key's write compares the revision it was planned on), but
   * read and written a chunk at a time, one transaction of reads and one of writes per chunk.
   * A chunk whose write transaction fails (someone wrote one of its keys meanwhile) applies its
   * resources one by one as `apply` does. A resource named more than once is applied in input
   * order, so the last one wins; one that fails is not applied again. Rejects with the first
   * failure (in input order) once every resource was tried.
   */
  async applyMany<R extends Resource>(resources: readonly R[], opts: { dryRun?: boolean; now?: () => Date } = {}): Promise<ApplyOutcome<R>[]> {
    const now = opts.now ?? (() => new Date());
    const items = resources.map((resource, index) => ({ resource, index, key: resourceKey(this.prefix, resource.kind, resource.metadata.name) }));
    const outcomes: ApplyOutcome<R>[] = [];
    const failures = new Map<number, unknown>();
    const failedKeys = new Set<string>();
    for (const round of roundsById(items, (item) => item.key)) {
      const todo = round.filter((item) => !failedKeys.has(item.key));
      const chunks = chunksOf(todo, APPLY_CHUNK_RESOURCES, APPLY_CHUNK_BYTES, (item) => Buffer.byteLength(item.key) * 2 + Buffer.byteLength(JSON.stringify(item.resource)));
      await forEachLimited(chunks, APPLY_CHUNKS_IN_FLIGHT, async (chunk) => {
        const settled = await this.applyChunk(chunk, now, opts.dryRun ?? false);
        chunk.forEach((item, i) => {
          const s = settled[i]!;
          if ('outcome' in s) outcomes[item.index] = s.outcome;
          else {
            failures.set(item.index, s.error);
            failedKeys.add(item.key);
          }
        });
      });
    }
    if (failures.size > 0) throw failures.get(Math.min(...failures.keys()));
    return outcomes;
  }

  /** One chunk of `applyMany` (each key once): never rejects, every resource gets its outcome or its error. */
  private async applyChunk<R extends Resource>(chunk: { resource: R; key: string }[], now: () => Date, dryRun: boolean): Promise<Settled<ApplyOutcome<R>>[]> {
    let kvs: (IKeyValue | undefined)[];
    try {
      kvs = await this.readKeys(chunk.map((c) => c.key));
    } catch (error) {
      return chunk.map(() => ({ error }));
    }
    const settled: Settled<ApplyOutcome<R>>[] = [];
    const writes: (GuardedPut & { index: number })[] = [];
    chunk.forEach(({ resource, key }, index) => {
      try {
        const kv = kvs[index];
        const stored = kv ? storedResource(resource.kind, key, kv) : undefined;
        const outcome = planApply(stored?.resource as R | undefined, resource, now());
        settled[index] = { outcome };
        if (outcome.result !== 'unchanged' && !dryRun) writes.push({ index, key, value: JSON.stringify(outcome.resource), modRevision: stored?.modRevision });
      } catch (error) {
        settled[index] = { error };
      }
    });
    if (writes.length === 0) return settled;
    try {
      if (await this.putGuarded(writes)) return settled;
    } catch (error) {
      for (const w of writes) settled[w.index] = { error };
      return settled;
    }
    // Someone wrote one of these keys since the read: each is applied again alone, on what is there now.
    await forEachLimited(writes, APPLY_CHUNK_RETRIES_IN_FLIGHT, async (w) => {
      try {
        settled[w.index] = { outcome: await this.apply(chunk[w.index]!.resource, { now }) };
      } catch (error) {
        settled[w.index] = { error };
      }
    });
    return settled;
  }

  /** The keys' current values (undefined where absent), read at one revision in one round trip. */
  private async readKeys(keys: string[]): Promise<(IKeyValue | undefined)[]> {
    const res = await this.client.call(keysOperation('get', keys), () => this.client.etcd.kv.txn({ success: keys.map((key) => ({ request_range: { key: Buffer.from(key) } })) }));
    return keys.map((_, i) => res.responses[i]?.response_range?.kvs[0]);
  }

  /**
   * Puts every value in one transaction if each key is still at the revision it was read at
   * (absent, for a create: mod revision 0); false when one was written meanwhile. On a fenced
   * client a failed transaction that lost the fence throws NotLeaderError instead.
   */
  private async putGuarded(puts: GuardedPut[]): Promise<boolean> {
    const operation = keysOperation('put', puts.map((p) => p.key));
    const write = { compares: puts.map((p) => [p.key, p.modRevision ?? 0] as const), deletes: [], puts: puts.map((p) => [p.key, p.value] as const) };
    if ((await this.client.writeTogether(operation, write)) !== undefined) return true;
    await this.client.checkFence(operation);
    return false;
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
      if (await this.putGuarded([{ key, value: JSON.stringify(outcome.resource), modRevision: stored?.modRevision }])) return outcome;
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
