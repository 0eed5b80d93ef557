import { z } from 'zod';

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

export const cutoverRecordSchema = z.strictObject({
  at: z.string(),
  fromColor: colorSchema.optional(),
  toColor: colorSchema,
  fromImage: z.string().optional(),
  toImage: z.string(),
  durationSeconds: z.number(),
  result: z.enum(['succeeded', 'abandoned']),
  message: z.string().optional(),
});
export type CutoverRecord = z.infer<typeof cutoverRecordSchema>;

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
    .strictObject({ color: colorSchema, image: z.string(), since: z.string(), state: z.string() })
    .optional(),
  cutovers: z.array(cutoverRecordSchema).optional(),
});
export type ServiceStatus = z.infer<typeof serviceStatusSchema>;

export const environmentStatusSchema = z.strictObject({
  observedGeneration: z.number().int(),
  phase: phaseSchema,
  conditions: z.array(conditionSchema),
  nodes: z.array(heldNodeSchema),
  services: z.record(z.string(), serviceStatusSchema),
  expiresAt: z.string().optional(),
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
