import type { Environment } from '../api/environment.js';
import type { EnvironmentGroup } from '../api/group.js';
import type { EnvironmentStatus, GroupStatus } from '../api/status.js';
import type { ApprovalRequest, PromotionRequest, RollbackRequest } from '../api/status.js';
import type { JobRunRequest } from '../api/job.js';

export type { RouteWriter, Route, RouteCutover, RouteOwner } from '../store/routes-contract.js';
export type { ProxyAck, ProxyAckReader } from '../store/proxies.js';

/**
 * What the reconcilers need from etcd, kept small so they are tested against in-memory fakes.
 * The controller wiring (store-ports.ts) adapts src/store to these.
 */
export interface ResourceReader {
  /** Throws InvalidInputError when the stored value does not pass the schema. */
  getEnvironment(name: string): Promise<Environment | undefined>;
  getGroup(name: string): Promise<EnvironmentGroup | undefined>;
  /** Valid environments only; an invalid one is reported by its own reconcile. */
  listEnvironments(): Promise<Environment[]>;
  listGroups(): Promise<EnvironmentGroup[]>;
  /** Names of every stored environment, valid or not. */
  listEnvironmentNames(): Promise<string[]>;
}

export interface ResourceDeleter {
  /** TTL expiry: the controller marks the environment as `berth delete env` does. */
  markEnvironmentDeleted(name: string): Promise<void>;
  /** Removes the environment's key, once what it owned is gone. */
  deleteEnvironment(name: string): Promise<void>;
}

/** `berth gc --confirm` releases (etcd `<prefix>/gc/environments/<env>`) of held orphan deletions. */
export interface GcReleases {
  isGcReleased(env: string): Promise<boolean>;
  clearGcRelease(env: string): Promise<void>;
}

export interface StatusWriter {
  getEnvironmentStatus(name: string): Promise<EnvironmentStatus | undefined>;
  putEnvironmentStatus(name: string, status: EnvironmentStatus): Promise<void>;
  deleteEnvironmentStatus(name: string): Promise<void>;
  /** Every environment with a status key, whether or not the value is valid. */
  listEnvironmentStatusNames(): Promise<string[]>;
  /** Every valid environment status, in one read: the orphan brake counts the orphans together. */
  listEnvironmentStatuses(): Promise<Map<string, EnvironmentStatus>>;
  getGroupStatus(name: string): Promise<GroupStatus | undefined>;
  putGroupStatus(name: string, status: GroupStatus): Promise<void>;
  deleteGroupStatus(name: string): Promise<void>;
}

/** `berth promote` requests (etcd `<prefix>/promotions/<env>/<service>`), for autoPromote: false. */
export interface PromotionStore {
  readPromotion(env: string, service: string): Promise<PromotionRequest | undefined>;
  clearPromotion(env: string, service: string): Promise<void>;
  /** Every request of an environment that is gone. */
  clearPromotions(env: string): Promise<void>;
}

/** `berth run` requests (etcd `<prefix>/job-requests/<env>/<job>`): start a job's run now. */
export interface JobRequestStore {
  readJobRequests(env: string): Promise<Record<string, JobRunRequest>>;
  clearJobRequest(env: string, job: string): Promise<void>;
  /** Every request of an environment that is gone. */
  clearJobRequests(env: string): Promise<void>;
}

/** The registry, as the reconciler needs it: what a tag points at now (src/registry). */
export interface ImageResolver {
  /** `sha256:…`; throws (a RegistryError) when the registry does not answer or knows no such tag. */
  resolveDigest(ref: string): Promise<string>;
}

/** `berth approve` / `berth rollback` requests of an environment with spec.promotion (src/store/release-requests.ts). */
export interface ReleaseRequestReader {
  readApproval(env: string): Promise<ApprovalRequest | undefined>;
  readRollback(env: string): Promise<RollbackRequest | undefined>;
  /** Every request of an environment that is gone. */
  clearReleaseRequests(env: string): Promise<void>;
}

/** Marks proven digests in the registry (`markTag`): a manifest PUT under the tag. */
export interface ImageTagger {
  tagDigest(repository: string, digest: string, tag: string): Promise<void>;
}
