import { z } from 'zod';
import { labels, resourceName } from './primitives.js';

export const API_VERSION = 'berth.dev/v1alpha1';

/**
 * `generation`, `creationTimestamp`, `specHash` and `deletionTimestamp` are owned by the store:
 * `berth apply` ignores what the user wrote there (as kubectl does) and the store sets them.
 * `specHash` is the hash of the spec that `generation` counts; a stored spec that no longer
 * matches it was written raw. `deletionTimestamp` is the mark of an explicit deletion (`berth
 * delete`, ttl expiry): the controller removes what the resource owned, then its keys.
 */
export const metadataSchema = z.strictObject({
  name: resourceName,
  labels: labels.optional(),
  annotations: z.record(z.string().max(253), z.string().max(4096)).optional(),
  generation: z.number().int().min(1).optional(),
  creationTimestamp: z.string().optional(),
  specHash: z.string().max(64).optional(),
  deletionTimestamp: z.string().optional(),
});
export type Metadata = z.infer<typeof metadataSchema>;
