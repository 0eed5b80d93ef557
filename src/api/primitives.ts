import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration.js';

/**
 * Field-level building blocks. Everything that ends up in a Swarm service name, a node
 * constraint, an nginx config or a process environment is checked here against a strict
 * character set, because these values are later spliced into text that other programs parse.
 */

/** DNS label, at most 40 characters: environment and group names. */
export const resourceName = z
  .string()
  .max(40, 'must be at most 40 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit");

/** Service names inside an environment follow the same rule: they become part of Swarm service names. */
export const serviceName = resourceName;

/**
 * nginx upstream names double as `server_name`, so they must be a plain host name:
 * no whitespace, braces, semicolons, quotes or `$` that would change the config's meaning.
 */
export const upstreamName = z
  .string()
  .max(63, 'must be at most 63 characters')
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a host name: lower-case letters, digits, '-' and '.'");

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * One server of a route, `host:port` (IPv4 or host name, port 1-65535 without leading zeros):
 * it is spliced into nginx's `server <value> ...;`, so nothing else may pass.
 */
export const routeServer = z.string().refine(
  (value) => {
    const m = /^([^:]+):([1-9]\d{0,4})$/.exec(value);
    if (!m || Number(m[2]) > 65535) return false;
    // A dotted all-numeric host must be a real IPv4 address, not "999.1.1.1".
    return /^[\d.]+$/.test(m[1]!) ? IPV4.test(m[1]!) : HOSTNAME.test(m[1]!);
  },
  { message: 'must be host:port, the host an IPv4 address or a host name' },
);

/** `[host:]port` nginx may `listen` on (IPv4, [IPv6] or a host name before the port). */
export const listenAddress = z
  .string()
  .regex(/^(?:(?:\d{1,3}\.){3}\d{1,3}:|\[[0-9a-fA-F:]+\]:|[A-Za-z0-9.-]+:)?\d{1,5}$/, 'must be [host:]port, like 127.0.0.1:8080');

/** Label keys and values as used in Swarm node labels and in `node.labels.<key>==<value>` constraints. */
export const labelKey = z
  .string()
  .min(1)
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/, "must be letters, digits, '_', '.' and '-'");
export const labelValue = z
  .string()
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9_.-]*$/, "must be letters, digits, '_', '.' and '-'");
export const labels = z.record(labelKey, labelValue);

export const duration = (opts: { max?: string } = {}) => {
  const maxMs = opts.max ? parseDuration(opts.max) : undefined;
  return z
    .string()
    .regex(DURATION_PATTERN, 'must be a duration like 10s, 5m, 48h or 1h30m')
    .refine((v) => maxMs === undefined || !DURATION_PATTERN.test(v) || parseDuration(v) <= maxMs, {
      message: `must be at most ${opts.max}`,
    });
};

/**
 * A Docker image reference: optional registry host[:port]/, lower-case path components,
 * optional :tag and/or @sha256:digest. Same grammar as distribution/reference, minus rarely
 * used corners (IPv6 registry hosts).
 */
export const IMAGE_PATTERN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
export const imageRef = z
  .string()
  .max(255, 'must be at most 255 characters')
  .regex(IMAGE_PATTERN, 'must be an image reference like registry:5000/name:tag');

/** Environment variable names a shell would accept; values may not carry NUL bytes. */
export const envKey = z
  .string()
  .max(256)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a variable name: letters, digits and '_', not starting with a digit");
export const envValue = z
  .union([z.string(), z.number(), z.boolean()])
  .refine((v) => typeof v !== 'string' || !v.includes('\0'), { message: 'must not contain NUL bytes' })
  .refine((v) => typeof v !== 'string' || v.length <= 32_768, { message: 'must be at most 32768 characters' });

export const port = z.number().int('must be a whole number').min(1).max(65535);

/** A `node.*` placement constraint, `key==value` or `key!=value`, as Swarm writes them. */
export const constraint = z
  .string()
  .regex(
    /^node\.(?:id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+|engine\.labels\.[A-Za-z0-9_.-]+)\s*(?:==|!=)\s*[A-Za-z0-9_.-]+$/,
    'must be a Swarm constraint like node.labels.disk==ssd',
  )
  .refine((c) => !/^node\.labels\.berth\./.test(c), {
    message: 'must not constrain on berth.* labels: berth manages those itself',
  });

/** `track`: re-resolve an image's tag this often (services and jobs alike). */
export const trackPeriod = duration({ max: '24h' }).refine((v) => !DURATION_PATTERN.test(v) || parseDuration(v) >= 1_000, { message: 'must be at least 1s' });
