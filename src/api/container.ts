import { z } from 'zod';
import { duration } from './primitives.js';

/** What services and jobs share about the container they run. */

/** Swarm service names are DNS names of at most 63 characters. */
export const MAX_SWARM_SERVICE_NAME = 63;

export const commandSchema = z
  .array(z.string().max(4096).refine((s) => !s.includes('\0'), { message: 'must not contain NUL bytes' }))
  .max(64);

export const healthcheckSchema = z.strictObject({
  test: z
    .array(z.string().max(4096))
    .min(1)
    .max(64)
    .refine((t) => ['CMD', 'CMD-SHELL', 'NONE'].includes(t[0] ?? ''), {
      message: 'must start with CMD, CMD-SHELL or NONE',
    }),
  interval: duration({ max: '1h' }).default('5s'),
  timeout: duration({ max: '1h' }).default('3s'),
  retries: z.number().int().min(0).max(100).default(3),
  startPeriod: duration({ max: '1h' }).optional(),
});
export type Healthcheck = z.infer<typeof healthcheckSchema>;

/** A Swarm secret or config name, as `docker secret create` accepts it. */
export const swarmObjectName = z
  .string()
  .max(64, 'must be at most 64 characters')
  .regex(/^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/, "must be a Swarm secret or config name: letters, digits, '_', '.' and '-', starting and ending with a letter or digit");

/**
 * A Swarm secret or config mounted into the container as a file, by name: berth never holds its
 * value. `target`: a path in the container; a secret's relative target lands in /run/secrets/.
 * Default: the secret's name under /run/secrets/, the config's name under /.
 */
export const swarmFileRefSchema = z.strictObject({
  source: swarmObjectName,
  target: z
    .string()
    .min(1)
    .max(1024)
    .refine((t) => !t.includes('\0') && !t.split('/').includes('..'), { message: "must be a file path without '..' or NUL bytes" })
    .optional(),
});
export type SwarmFileRef = z.infer<typeof swarmFileRefSchema>;

/** Two mounts may not land on one path. */
export function duplicateTarget(targets: string[]): string | undefined {
  return targets.find((t, i) => targets.indexOf(t) !== i);
}
