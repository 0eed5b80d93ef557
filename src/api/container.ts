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
