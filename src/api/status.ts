import { z } from 'zod';
import { jobStatusSchema } from './job.js';

/** Kubernetes-style condition. `lastTransitionTime` changes only when `status` changes. */
export const conditionSchema = z.strictObject({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: z.string(),
});
export type Condition = z.infer<typeof conditionSchema>;

export const PHASES = ['Pending', 'Progressing', 'Ready', 'Degraded', 'Failed', 'Terminating'] as const;
export const phaseSchema = z.enum(PHASES);
export type Phase = z.infer<typeof phaseSchema>;

export const colorSchema = z.enum(['blue', 'green']);
export type Color = z.infer<typeof colorSchema>;

/**
 * Where a blue-green service's release stands (src/reconcile/bluegreen/decide.ts):
 * Fresh: nothing serves yet, the first colour is being created.
 * Starting: the new colour runs the new spec and its tasks are coming up (and being probed).
 * Unhealthy: the new colour's tasks run but fail the pre-promotion probe; retried until progressDeadline.
 * WaitingForPromotion: healthy and probed, waiting for `berth promote` (autoPromote: false).
 * CutOver: the route serves the colour that runs the spec; the other colour is at 0.
 * Draining: cut over; the old colour keeps running for `strategy.drain`, then goes to 0.
 * Aborted: the new colour was not healthy within progressDeadline; it is at 0, the route never
 *   moved, and nothing is retried until the spec changes.
 * Resizing: only the replica count changed; the colours that serve or wait are resized in place
 *   (both of them during a cutover), no new colour starts.
 */
export const blueGreenStateSchema = z.enum(['Fresh', 'Starting', 'Unhealthy', 'WaitingForPromotion', 'CutOver', 'Draining', 'Aborted', 'Resizing']);
export type BlueGreenState = z.infer<typeof blueGreenStateSchema>;

/** The attempt recorded in ServiceStatus.pending: what the new colour waits for. */
export const pendingStateSchema = z.enum(['Progressing', 'Probing', 'WaitingForPromotion', 'Abandoned']);
export type PendingState = z.infer<typeof pendingStateSchema>;

/** What `berth promote env NAME SERVICE` records (etcd `<prefix>/promotions/<env>/<service>`). */
export const promotionRequestSchema = z.strictObject({
  color: colorSchema,
  image: z.string(),
  requestedAt: z.string().optional(),
});
export type PromotionRequest = z.infer<typeof promotionRequestSchema>;

export const heldNodeSchema = z.strictObject({
  id: z.string(),
  hostname: z.string(),
  addr: z.string(),
  state: z.string(),
});
export type HeldNode = z.infer<typeof heldNodeSchema>;

export const cutoverResultSchema = z.enum(['succeeded', 'abandoned']);
export type CutoverResult = z.infer<typeof cutoverResultSchema>;

export const cutoverRecordSchema = z.strictObject({
  at: z.string(),
  fromColor: colorSchema.optional(),
  toColor: colorSchema,
  fromImage: z.string().optional(),
  toImage: z.string(),
  durationSeconds: z.number(),
  result: cutoverResultSchema,
  message: z.string().optional(),
});
export type CutoverRecord = z.infer<typeof cutoverRecordSchema>;

/**
 * Rebalancing one service's tasks over the environment's nodes (src/reconcile/planner/rebalance.ts).
 * Moving: one task at a time is being moved (one replica more started, then one trimmed from the
 * fullest node). Unbalanced: a move made no progress (no room, a new task not healthy in time);
 * not tried again for the same node set and spec generation.
 */
export const rebalanceStateSchema = z.enum(['Moving', 'Unbalanced']);
export type RebalanceState = z.infer<typeof rebalanceStateSchema>;

export const rebalanceRecordSchema = z.strictObject({
  state: rebalanceStateSchema,
  /** Ids of the nodes the tasks are spread over (sorted): a new set is a new attempt. */
  nodes: z.array(z.string()),
  /** The spec generation tried: a new one is a new attempt. */
  generation: z.number().int(),
  /** When the current step (or the attempt, once Unbalanced) began. */
  since: z.string(),
  /** Tasks moved so far, the current step included. */
  moves: z.number().int(),
  /** How far from even the tasks were when the current step began (rebalance.ts: unevenness). */
  unevenness: z.number().int(),
  message: z.string(),
});
export type RebalanceRecord = z.infer<typeof rebalanceRecordSchema>;

export const serviceStatusSchema = z.strictObject({
  desiredReplicas: z.number().int(),
  runningReplicas: z.number().int(),
  image: z.string(),
  /** blueGreen only: the colour the route points at. */
  activeColor: colorSchema.optional(),
  /** `host:port` of each running task's published route port (or first port). */
  endpoints: z.array(z.string()),
  route: z
    .strictObject({
      upstream: z.string(),
      color: colorSchema.optional(),
      servers: z.array(z.string()),
    })
    .optional(),
  /** blueGreen: a green waiting for `berth promote`, or being brought up. */
  pending: z
    .strictObject({ color: colorSchema, image: z.string(), since: z.string(), state: pendingStateSchema })
    .optional(),
  cutovers: z.array(cutoverRecordSchema).optional(),
  /** rolling: Swarm is still replacing the service's tasks with its current spec (UpdateStatus `updating`). */
  updating: z.boolean().optional(),
  /** rolling: Swarm rolled back the update to this spec; berth does not issue it again until the spec changes. */
  rolledBack: z
    .strictObject({
      /** berth.spec-hash of the spec Swarm rolled back from. */
      specHash: z.string(),
      image: z.string(),
      /** Swarm's UpdateStatus.Message. */
      message: z.string(),
      /** Swarm's UpdateStatus.StartedAt of the rollback: one record per rollback. */
      since: z.string(),
    })
    .optional(),
  /** Running tasks per node hostname (of the live colour for blue-green). */
  tasksPerNode: z.record(z.string(), z.number().int()).optional(),
  /** A rebalance in progress, or one that could not progress (condition Unbalanced). */
  rebalance: rebalanceRecordSchema.optional(),
});
export type ServiceStatus = z.infer<typeof serviceStatusSchema>;
export type PendingAttempt = NonNullable<ServiceStatus['pending']>;
export type RolledBack = NonNullable<ServiceStatus['rolledBack']>;

/**
 * A service's image tag as resolved against its registry: what Swarm runs is `ref@digest`. Kept
 * while the service's spec (all but its replica count) hashes to `specHash`, so the tag is
 * resolved once per spec change (and every `track` period), not on every reconcile or restart.
 */
export const resolvedImageSchema = z.strictObject({
  /** The image as the spec writes it (`10.77.0.1:5000/web:v1`). */
  ref: z.string(),
  digest: z.string(),
  specHash: z.string(),
  resolvedAt: z.string(),
});
export type ResolvedImage = z.infer<typeof resolvedImageSchema>;

/**
 * A release: the set of images an environment runs while Ready, each pinned by digest. Its id is
 * a short hash of the digests per service, so the same digests have the same id in every
 * environment (the one qa proved is the one prod runs).
 */
export const releaseRecordSchema = z.strictObject({
  id: z.string(),
  /** Per service, the image Swarm runs (`repo:tag@sha256:…`). */
  images: z.record(z.string(), z.string()),
  /** When the environment became Ready with it. */
  readySince: z.string(),
  /** Promoted from this environment. */
  from: z.string().optional(),
  approvedBy: z.string().optional(),
  approvedAt: z.string().optional(),
});
export type ReleaseRecord = z.infer<typeof releaseRecordSchema>;

/** The release an environment with `spec.promotion` was last told to run by its upstream. */
export const promotedReleaseSchema = z.strictObject({
  release: z.string(),
  /** Per service: the digest-pinned image taken from the upstream's release. */
  images: z.record(z.string(), z.string()),
  from: z.string(),
  at: z.string(),
  approvedBy: z.string().optional(),
  approvedAt: z.string().optional(),
});
export type PromotedRelease = z.infer<typeof promotedReleaseSchema>;

/**
 * The gates an upstream release passes, in order, before it is promoted; `markTag` holds a
 * promotion whose tag could not be written to the registry (retried).
 */
export const promotionGateSchema = z.enum(['upstream', 'soak', 'verify', 'approval', 'markTag']);
export type PromotionGate = z.infer<typeof promotionGateSchema>;

/** `berth approve env NAME`: etcd `<prefix>/releases/<env>/approval`. */
export const approvalRequestSchema = z.strictObject({
  release: z.string(),
  by: z.string(),
  at: z.string(),
});
export type ApprovalRequest = z.infer<typeof approvalRequestSchema>;

/**
 * `berth rollback env NAME`: etcd `<prefix>/releases/<env>/rollback`. With spec.promotion it
 * holds while the environment's last promotion is still `from`: the next promotion ends it.
 * Without, it holds while the spec names exactly `specImages`: the next change of the spec's
 * images (an image edited, a service added or removed) ends it.
 */
export const rollbackRequestSchema = z.strictObject({
  to: z.string(),
  images: z.record(z.string(), z.string()),
  /** The release it rolls back from: the promoted one (spec.promotion), else the current one. */
  from: z.string(),
  /** Without spec.promotion: each service's image as the spec named it when the rollback was asked. */
  specImages: z.record(z.string(), z.string()).optional(),
  by: z.string(),
  at: z.string(),
});
export type RollbackRequest = z.infer<typeof rollbackRequestSchema>;

export const environmentStatusSchema = z.strictObject({
  observedGeneration: z.number().int(),
  phase: phaseSchema,
  conditions: z.array(conditionSchema),
  nodes: z.array(heldNodeSchema),
  services: z.record(z.string(), serviceStatusSchema),
  /** Per job: its schedule state and last runs (src/reconcile/jobs/). */
  jobs: z.record(z.string(), jobStatusSchema).optional(),
  /**
   * When the controller first saw the environment, by its own clock: `ttl` counts from here, not
   * from `metadata.creationTimestamp`, which `berth apply` stamps with the client's clock.
   */
  firstObservedAt: z.string().optional(),
  expiresAt: z.string().optional(),
  /** Per service: its tag resolved to the digest Swarm runs. */
  images: z.record(z.string(), resolvedImageSchema).optional(),
  /** Per job: its tag resolved to the digest its runs start with. */
  jobImages: z.record(z.string(), resolvedImageSchema).optional(),
  /** The release the environment runs (or last ran) while Ready. */
  release: releaseRecordSchema.optional(),
  /** The last releases, newest first, the current one included; at most 20. */
  history: z.array(releaseRecordSchema).optional(),
  /** spec.promotion: the upstream release last promoted here. */
  promoted: promotedReleaseSchema.optional(),
  /** The `berth rollback` that pins the images now, while it holds. */
  rollback: rollbackRequestSchema.optional(),
  /** spec.promotion: the upstream release that waits, and at which gate (PromotionPending says the same in words). */
  promotionPending: z.strictObject({ gate: promotionGateSchema, release: z.string().optional() }).optional(),
  updatedAt: z.string(),
});
export type EnvironmentStatus = z.infer<typeof environmentStatusSchema>;

export const groupStatusSchema = z.strictObject({
  observedGeneration: z.number().int(),
  phase: phaseSchema,
  conditions: z.array(conditionSchema),
  /** Ready+Active nodes matching the selector. */
  poolNodes: z.number().int(),
  /** Nodes claimed, per environment. */
  claims: z.record(z.string(), z.number().int()),
  updatedAt: z.string(),
});
export type GroupStatus = z.infer<typeof groupStatusSchema>;

/** Replace or add a condition, keeping lastTransitionTime when the status did not change. */
export function setCondition(conditions: Condition[], next: Omit<Condition, 'lastTransitionTime'>, now: Date): Condition[] {
  const previous = conditions.find((c) => c.type === next.type);
  const lastTransitionTime =
    previous && previous.status === next.status ? previous.lastTransitionTime : now.toISOString();
  return [...conditions.filter((c) => c.type !== next.type), { ...next, lastTransitionTime }];
}
