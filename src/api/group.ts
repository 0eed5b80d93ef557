import { z } from 'zod';
import { API_VERSION, metadataSchema } from './metadata.js';
import { labelKey, labelValue } from './primitives.js';

export const groupSpecSchema = z.strictObject({
  /** Node labels (node.labels.*) that put a Swarm node in this pool. At least one, so a typo never grabs every node. */
  nodeSelector: z
    .record(labelKey, labelValue)
    .refine((sel) => Object.keys(sel).length > 0, { message: 'must select on at least one node label' })
    .refine((sel) => !Object.keys(sel).some((k) => k.startsWith('berth.')), {
      message: 'must not select on berth.* labels: berth manages those itself',
    }),
  /** Nodes never handed to an environment: headroom to replace a lost node. */
  spare: z.number().int('must be a whole number').min(0).max(1000).default(0),
});

export const groupSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('EnvironmentGroup'),
  metadata: metadataSchema,
  spec: groupSpecSchema,
});

export type GroupSpec = z.infer<typeof groupSpecSchema>;
export type EnvironmentGroup = z.infer<typeof groupSchema>;
