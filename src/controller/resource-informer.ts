import type { Environment } from '../api/environment.js';
import type { EnvironmentGroup } from '../api/group.js';
import type { Kind, Resource } from '../api/resource.js';
import type { ResourceDeleter, ResourceReader } from '../reconcile/ports.js';
import { deepFreeze } from '../util/deep-freeze.js';

/**
 * The environments and groups as the controller's etcd watch last delivered them, which the
 * reconcilers read instead of etcd (client-go's informer cache and lister): a reconcile starts
 * without waiting on two etcd round trips and decoding what the watch decoded already. A key is
 * enqueued after its event reached this cache, so a reconcile sees at least the version that
 * caused it; a later one raises its own event and reconcile.
 *
 * Reads go to etcd instead while the watch has not listed yet (each term of leadership starts a
 * new watch), for a name the cache does not hold (a deleted environment's reconcile, or a stored
 * value that is not valid, which etcd's read reports: both rare), and for an environment this process
 * marked deleted or deleted itself, for the rest of the term: its next reconcile must not act on
 * the version from before that write while the watch has not delivered it yet (an event of an
 * earlier write could not tell the two apart).
 */
export class ResourceInformer implements ResourceReader, ResourceDeleter {
  private readonly environments = new Map<string, Environment>();
  private readonly groups = new Map<string, EnvironmentGroup>();
  /** Environments this process marked deleted or deleted in this term: read from etcd. */
  private readonly written = new Set<string>();
  private synced = false;

  constructor(private readonly store: ResourceReader & ResourceDeleter) {}

  /** A new watch begins (a new term): reads go to etcd until its first list is in. */
  reset(): void {
    this.synced = false;
    this.environments.clear();
    this.groups.clear();
    this.written.clear();
  }

  /** The watch's full list: every valid resource. */
  replace(items: Resource[]): void {
    this.environments.clear();
    this.groups.clear();
    for (const r of items) this.put(r);
    this.synced = true;
  }

  /** A valid value stored (an invalid one reaches the watch's consumer as a delete). */
  put(r: Resource): void {
    deepFreeze(r);
    if (r.kind === 'Environment') this.environments.set(r.metadata.name, r);
    else this.groups.set(r.metadata.name, r);
  }

  delete(kind: Kind, name: string): void {
    if (kind === 'Environment') this.environments.delete(name);
    else this.groups.delete(name);
  }

  getEnvironment(name: string): Promise<Environment | undefined> {
    const held = this.synced && !this.written.has(name) ? this.environments.get(name) : undefined;
    return held ? Promise.resolve(held) : this.store.getEnvironment(name);
  }

  getGroup(name: string): Promise<EnvironmentGroup | undefined> {
    const held = this.synced ? this.groups.get(name) : undefined;
    return held ? Promise.resolve(held) : this.store.getGroup(name);
  }

  listEnvironments(): Promise<Environment[]> {
    return this.store.listEnvironments();
  }

  listGroups(): Promise<EnvironmentGroup[]> {
    return this.store.listGroups();
  }

  listEnvironmentNames(): Promise<string[]> {
    return this.store.listEnvironmentNames();
  }

  async markEnvironmentDeleted(name: string): Promise<void> {
    this.written.add(name);
    await this.store.markEnvironmentDeleted(name);
  }

  async deleteEnvironment(name: string): Promise<void> {
    this.written.add(name);
    await this.store.deleteEnvironment(name);
  }
}
