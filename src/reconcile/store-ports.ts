import type { Logger } from 'pino';
import type { Environment } from '../api/environment.js';
import type { EnvironmentGroup } from '../api/group.js';
import { InvalidInputError, InvalidStoredValueError } from '../api/errors.js';
import type { EnvironmentStatus, GroupStatus } from '../api/status.js';
import type { EtcdClient } from '../store/client.js';
import { resourcePrefix } from '../store/keys.js';
import { ResourceStore } from '../store/resources.js';
import { StatusStore } from '../store/status.js';
import type { ApprovalRequest, PromotionRequest, RollbackRequest } from '../api/status.js';
import { clearReleaseRequests, readApproval, readRollback } from '../store/release-requests.js';
import { clearPromotion, clearPromotions, readPromotion } from '../store/promotions.js';
import { clearGcRelease, isGcReleased } from '../store/gc.js';
import type { GcReleases, JobRequestStore, PromotionStore, ReleaseRequestReader, ResourceDeleter, ResourceReader, StatusWriter } from './ports.js';
import type { JobRunRequest } from '../api/job.js';
import { clearJobRequest, clearJobRequests, readJobRequests } from '../store/job-requests.js';

interface TermStatuses {
  term: string;
  statuses: Map<string, EnvironmentStatus | undefined>;
  /** Written in this term without an answer yet, or with a failure (it may or may not have landed): read from etcd. */
  unsure: Set<string>;
  /** The term's list is in: a status neither held nor unsure is absent. */
  listed: boolean;
  listing?: Promise<void>;
}

/**
 * The reconcilers' ports over src/store. A status read that fails is an error, except a stored
 * status that is not valid: status is the controller's own derived data, so such a value is
 * logged and read as absent, and the reconcile's next status write replaces it.
 */
export class StorePorts implements ResourceReader, ResourceDeleter, StatusWriter, PromotionStore, GcReleases, JobRequestStore, ReleaseRequestReader {
  private readonly resources: ResourceStore;
  private readonly statuses: StatusStore;
  /**
   * The environment statuses as this leader last read or wrote them in its current term. Only the
   * leader writes statuses (its writes are fenced), so within a term what it wrote is what etcd
   * holds, and a reconcile need not read it back first. A new term starts from one list of them
   * all (another leader may have written in between), not one read per environment.
   */
  private known: TermStatuses | undefined;

  constructor(
    private readonly client: EtcdClient,
    private readonly log: Logger,
  ) {
    this.resources = new ResourceStore(client);
    this.statuses = new StatusStore(client);
  }

  getEnvironment(name: string): Promise<Environment | undefined> {
    return this.resources.get('Environment', name);
  }

  getGroup(name: string): Promise<EnvironmentGroup | undefined> {
    return this.resources.get('EnvironmentGroup', name).catch((err: unknown) => {
      if (err instanceof InvalidInputError) return undefined; // an invalid group is as good as missing
      throw err;
    });
  }

  /** Lists tolerantly: one invalid stored environment must not stop the others' reconciles. */
  async listEnvironments(): Promise<Environment[]> {
    return (await this.listTolerantly('Environment')) as Environment[];
  }

  async listGroups(): Promise<EnvironmentGroup[]> {
    return (await this.listTolerantly('EnvironmentGroup')) as EnvironmentGroup[];
  }

  listEnvironmentNames(): Promise<string[]> {
    return this.client.names(resourcePrefix(this.client.prefix, 'Environment'));
  }

  async markEnvironmentDeleted(name: string): Promise<void> {
    await this.resources.markDeleted(name);
  }

  async deleteEnvironment(name: string): Promise<void> {
    await this.resources.delete('Environment', name);
  }

  async getEnvironmentStatus(name: string): Promise<EnvironmentStatus | undefined> {
    const known = this.knownStatuses();
    if (known && !known.statuses.has(name) && !known.unsure.has(name)) await this.listOnce(known);
    if (known?.statuses.has(name)) return structuredClone(known.statuses.get(name));
    if (known?.listed && !known.unsure.has(name)) return undefined;
    const status = await this.statuses.getStatus('Environment', name).catch((err: unknown) => this.invalidAsAbsent(err));
    // A write that landed while this read was on its way is newer than what it read.
    if (known && !known.statuses.has(name) && !known.unsure.has(name)) known.statuses.set(name, structuredClone(status));
    return status;
  }

  /**
   * The term's one list of every status. What a write of this term touched stands: it is newer,
   * or on its way, or failed (then read from etcd). A list that fails is tried again by the next
   * read; meanwhile each status is read on its own.
   */
  private async listOnce(known: TermStatuses): Promise<void> {
    known.listing ??= this.statuses
      .listStatuses('Environment', (err) => this.invalidAsAbsent(err))
      .then((listed) => {
        for (const [name, status] of listed) if (!known.statuses.has(name) && !known.unsure.has(name)) known.statuses.set(name, status);
        known.listed = true;
      })
      .catch((err: unknown) => {
        known.listing = undefined;
        this.log.warn({ err: (err as Error).message }, 'listing the statuses failed: reading them one by one');
      });
    await known.listing;
  }

  putEnvironmentStatus(name: string, status: EnvironmentStatus): Promise<void> {
    return this.writeStatus(name, () => this.statuses.putStatus('Environment', name, status), status);
  }

  deleteEnvironmentStatus(name: string): Promise<void> {
    return this.writeStatus(name, () => this.statuses.deleteStatus('Environment', name), undefined);
  }

  /** A status write, remembered once it landed; while on its way, and when it failed, the status is read from etcd. */
  private async writeStatus(name: string, write: () => Promise<unknown>, after: EnvironmentStatus | undefined): Promise<void> {
    const known = this.knownStatuses();
    known?.statuses.delete(name);
    known?.unsure.add(name);
    await write();
    known?.statuses.set(name, structuredClone(after));
    known?.unsure.delete(name);
  }

  /** This term's remembered statuses; undefined when not leading (the CLI's unfenced client). */
  private knownStatuses(): TermStatuses | undefined {
    const term = this.client.term();
    if (term === undefined) return undefined;
    if (this.known?.term !== term) this.known = { term, statuses: new Map(), unsure: new Set(), listed: false };
    return this.known;
  }

  /** Every environment with a status key, valid or not: a status left behind must still be cleaned up. */
  listEnvironmentStatusNames(): Promise<string[]> {
    return this.statuses.listStatusNames('Environment');
  }


  listEnvironmentStatuses(): Promise<Map<string, EnvironmentStatus>> {
    return this.statuses.listStatuses('Environment');
  }

  getGroupStatus(name: string): Promise<GroupStatus | undefined> {
    return this.statuses.getStatus('EnvironmentGroup', name).catch((err: unknown) => this.invalidAsAbsent(err));
  }

  putGroupStatus(name: string, status: GroupStatus): Promise<void> {
    return this.statuses.putStatus('EnvironmentGroup', name, status);
  }

  async deleteGroupStatus(name: string): Promise<void> {
    await this.statuses.deleteStatus('EnvironmentGroup', name);
  }

  readPromotion(env: string, service: string): Promise<PromotionRequest | undefined> {
    return readPromotion(this.client, env, service);
  }

  clearPromotion(env: string, service: string): Promise<void> {
    return clearPromotion(this.client, env, service);
  }

  clearPromotions(env: string): Promise<void> {
    return clearPromotions(this.client, env);
  }

  isGcReleased(env: string): Promise<boolean> {
    return isGcReleased(this.client, env);
  }

  clearGcRelease(env: string): Promise<void> {
    return clearGcRelease(this.client, env);
  }

  readJobRequests(env: string): Promise<Record<string, JobRunRequest>> {
    return readJobRequests(this.client, env);
  }

  clearJobRequest(env: string, job: string): Promise<void> {
    return clearJobRequest(this.client, env, job);
  }

  clearJobRequests(env: string): Promise<void> {
    return clearJobRequests(this.client, env);
  }

  readApproval(env: string): Promise<ApprovalRequest | undefined> {
    return readApproval(this.client, env);
  }

  readRollback(env: string): Promise<RollbackRequest | undefined> {
    return readRollback(this.client, env);
  }

  clearReleaseRequests(env: string): Promise<void> {
    return clearReleaseRequests(this.client, env);
  }

  private invalidAsAbsent(err: unknown): undefined {
    if (!(err instanceof InvalidStoredValueError)) throw err;
    this.log.warn({ key: err.key, err: err.message }, 'stored status is not valid: read as absent, the next status write replaces it');
    return undefined;
  }

  private async listTolerantly(kind: 'Environment' | 'EnvironmentGroup') {
    // An invalid stored resource is reported by its own reconcile (Failed/InvalidSpec).
    return (await this.resources.listAt(kind, undefined, () => undefined)).items;
  }
}
