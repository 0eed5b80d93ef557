import { z } from 'zod';
import { MAX_SWARM_SERVICE_NAME, commandSchema, duplicateTarget, healthcheckSchema, swarmFileRefSchema } from './container.js';
import { jobSpecSchema, jobSwarmNameFits } from './job.js';
import { API_VERSION, metadataSchema } from './metadata.js';
import {
  constraint,
  duration,
  envKey,
  envValue,
  imageRef,
  port,
  resourceName,
  serviceName,
  trackPeriod,
  upstreamName,
} from './primitives.js';

/** `<env>_<service>_green` is the longest service name berth makes; a job's runs have their own bound (job.ts). */
export { MAX_SWARM_SERVICE_NAME };
const LONGEST_COLOR_SUFFIX = '_green'.length;

const portSchema = z.strictObject({
  target: port,
  /** Host port on every node running a task; when absent Swarm picks one per task. */
  published: port.optional(),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
});

const placementSchema = z.strictObject({
  /** Anti-affinity: at most this many replicas on one node (Swarm MaxReplicas). */
  maxPerNode: z.number().int('must be a whole number').min(1).max(1000).optional(),
  spreadBy: z
    .string()
    .regex(/^node\.labels\.[A-Za-z0-9_.-]+$/, 'must be a node label like node.labels.zone')
    .optional(),
  constraints: z.array(constraint).max(32).optional(),
  /**
   * false: berth never moves this service's running tasks to spread them over the environment's
   * nodes after it grows (or a node comes back). Absent means true.
   */
  rebalance: z.boolean().optional(),
});

const strategySchema = z.strictObject({
  type: z.enum(['rolling', 'blueGreen']).default('rolling'),
  /** blueGreen: the old colour keeps running this long after cutover. */
  drain: duration({ max: '1h' }).default('10s'),
  /** blueGreen: false means green waits, healthy, for `berth promote`. */
  autoPromote: z.boolean().default(true),
  /** blueGreen: a green that is not healthy within this time is abandoned; the route never moves. */
  progressDeadline: duration({ max: '1h' }).default('3m'),
});

const routeSchema = z.strictObject({
  upstream: upstreamName.optional(),
  port: port.optional(),
});

export const serviceSpecSchema = z.strictObject({
  image: imageRef,
  replicas: z.number().int('must be a whole number').min(0).max(1000).default(1),
  command: commandSchema.optional(),
  environment: z.record(envKey, envValue).optional(),
  ports: z.array(portSchema).max(16).default([]),
  healthcheck: healthcheckSchema.optional(),
  placement: placementSchema.default({}),
  strategy: strategySchema.default({ type: 'rolling', drain: '10s', autoPromote: true, progressDeadline: '3m' }),
  route: routeSchema.optional(),
  /** Re-resolve the image's tag this often and roll out a new digest with the service's strategy. */
  track: trackPeriod.optional(),
  /** Swarm secrets mounted as files, by name (`docker secret create`); their values never pass through berth. */
  secrets: z.array(swarmFileRefSchema).max(64).optional(),
  /** Swarm configs mounted as files, by name (`docker config create`). */
  configs: z.array(swarmFileRefSchema).max(64).optional(),
});

export const approvalModeSchema = z.enum(['manual', 'auto']);
export type ApprovalMode = z.infer<typeof approvalModeSchema>;

/** An image tag: what `markTag` moves in the registry. */
export const imageTag = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, "must be an image tag: letters, digits, '_', '.' and '-'");

/** The environment runs the releases its upstream `from` has proven (docs/releases.md). */
const promotionSchema = z.strictObject({
  from: resourceName,
  /** The upstream Ready with the release at least this long. */
  soak: duration({ max: '30d' }).default('0s'),
  /** manual: `berth approve env NAME`; auto: as soon as the other gates hold. */
  approval: approvalModeSchema.default('manual'),
  /** Checked on each of the upstream's route servers before promotion. */
  verify: z
    .strictObject({
      http: z.strictObject({
        path: z.string().max(1024).regex(/^\/[^\s]*$/, 'must be an absolute path like /healthz'),
        expect: z.number().int().min(100).max(599).default(200),
      }),
    })
    .optional(),
  /** Tags the promoted digests in their repositories (a manifest PUT), as CI marks tested builds. */
  markTag: imageTag.optional(),
});
export type PromotionSpec = z.infer<typeof promotionSchema>;

export const environmentSpecSchema = z
  .strictObject({
    group: resourceName,
    /** Nodes claimed exclusively from the group; resize by editing this. */
    nodes: z.number().int('must be a whole number').min(0).max(1000),
    /** The environment is deleted when it expires (preflight / review environments). */
    ttl: duration({ max: '365d' }).optional(),
    services: z.record(serviceName, serviceSpecSchema).default({}),
    /** Scheduled jobs: each run is a Swarm replicated-job service (docs/jobs.md). */
    jobs: z.record(serviceName, jobSpecSchema).default({}),
    promotion: promotionSchema.optional(),
  })
  .superRefine((spec, ctx) => {
    for (const [name, svc] of Object.entries(spec.services)) {
      const targets = svc.ports.map((p) => p.target);
      if (svc.route?.port !== undefined && !targets.includes(svc.route.port)) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', name, 'route', 'port'],
          message: `must be one of the service's target ports (${targets.join(', ') || 'none declared'})`,
        });
      }
      if (svc.strategy.type === 'blueGreen' && targets.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', name, 'strategy', 'type'],
          message: 'blueGreen needs at least one entry in ports: the cutover moves the route to the new colour',
        });
      }
      if (svc.route && targets.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', name, 'route'],
          message: 'a route needs at least one entry in ports',
        });
      }
      const mounted = duplicateTarget(swarmFileTargets(svc));
      if (mounted) ctx.addIssue({ code: 'custom', path: ['services', name], message: `two secrets or configs are mounted at ${mounted}` });
      const published = svc.ports.filter((p) => p.published !== undefined).map((p) => p.published);
      if (new Set(published).size !== published.length) {
        ctx.addIssue({ code: 'custom', path: ['services', name, 'ports'], message: 'published ports must be unique' });
      }
    }
  });

export const environmentSchema = z
  .strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('Environment'),
    metadata: metadataSchema,
    spec: environmentSpecSchema,
  })
  .superRefine((env, ctx) => {
    const envName = env.metadata.name;
    if (env.spec.promotion?.from === envName) {
      ctx.addIssue({ code: 'custom', path: ['spec', 'promotion', 'from'], message: 'an environment cannot promote from itself' });
    }
    const upstreams = new Map<string, string>();
    for (const job of Object.keys(env.spec.jobs)) {
      if (env.spec.services[job]) {
        ctx.addIssue({ code: 'custom', path: ['spec', 'jobs', job], message: `"${job}" is also a service: a job and a service may not share a name` });
      }
      if (!jobSwarmNameFits(envName, job)) {
        ctx.addIssue({ code: 'custom', path: ['spec', 'jobs', job], message: `job name too long: its runs' Swarm service names would exceed Swarm's ${MAX_SWARM_SERVICE_NAME} characters` });
      }
    }
    for (const [name, svc] of Object.entries(env.spec.services)) {
      const longest = envName.length + 1 + name.length + LONGEST_COLOR_SUFFIX;
      if (longest > MAX_SWARM_SERVICE_NAME) {
        ctx.addIssue({
          code: 'custom',
          path: ['spec', 'services', name],
          message: `service name too long: "${envName}_${name}_green" would exceed Swarm's ${MAX_SWARM_SERVICE_NAME} characters`,
        });
      }
      if (svc.ports.length === 0) continue;
      const upstream = routeUpstream(envName, name, svc);
      const defaultIsValid = upstreamName.safeParse(upstream).success;
      if (!defaultIsValid) {
        ctx.addIssue({
          code: 'custom',
          path: ['spec', 'services', name, 'route', 'upstream'],
          message: `default upstream "${upstream}" is not a valid host name; set route.upstream`,
        });
      }
      const other = upstreams.get(upstream);
      if (other) {
        ctx.addIssue({
          code: 'custom',
          path: ['spec', 'services', name, 'route', 'upstream'],
          message: `upstream "${upstream}" is already used by service "${other}"`,
        });
      }
      upstreams.set(upstream, name);
    }
  });

export type ServiceSpec = z.infer<typeof serviceSpecSchema>;
export type EnvironmentSpec = z.infer<typeof environmentSpecSchema>;
export type Environment = z.infer<typeof environmentSchema>;

/** Where a secret lands in the container: an absolute target, else under /run/secrets/. */
export function secretPath(ref: { source: string; target?: string | undefined }): string {
  const t = ref.target ?? ref.source;
  return t.startsWith('/') ? t : `/run/secrets/${t}`;
}

/** Where a config lands in the container: its target, else /<name>. */
export function configPath(ref: { source: string; target?: string | undefined }): string {
  const t = ref.target ?? ref.source;
  return t.startsWith('/') ? t : `/${t}`;
}

function swarmFileTargets(svc: Pick<ServiceSpec, 'secrets' | 'configs'>): string[] {
  return [...(svc.secrets ?? []).map(secretPath), ...(svc.configs ?? []).map(configPath)];
}

/** The nginx upstream a routed service joins: `route.upstream`, or `<env>-<service>`. */
export function routeUpstream(envName: string, serviceName: string, svc: Pick<ServiceSpec, 'route'>): string {
  return svc.route?.upstream ?? `${envName}-${serviceName}`;
}

/** The target port whose published endpoints join the upstream: `route.port`, or the first port. */
export function routePort(svc: Pick<ServiceSpec, 'route' | 'ports'>): number | undefined {
  return svc.route?.port ?? svc.ports[0]?.target;
}
