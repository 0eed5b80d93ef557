import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { notificationEnvelopeSchema, tagPushes, type TagPush } from './notifications.js';

/** Where `berth controller` takes registry notifications, on its metrics server (`--metrics-addr`). */
export const NOTIFY_PATH = '/registry/notifications';

/** A registry sends one event per request by default, a few with batching: 1 MiB is plenty. */
export const NOTIFY_MAX_BYTES = 1 << 20;

export type NotifyResult = 'accepted' | 'ignored' | 'rejected' | 'failed';

export interface NotifyEndpointOptions {
  /** When set, a request must carry `Authorization: Bearer <token>` (the registry's `headers`). */
  token?: string | undefined;
  maxBytes?: number;
  /** Stores the pushes (etcd); a failure answers 503, so the registry sends the event again. */
  record: (pushes: TagPush[]) => Promise<void>;
  log: Logger;
  onResult?: (result: NotifyResult) => void;
}

class Rejected extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sameToken(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The body, at most `max` bytes: a longer one is refused as it arrives, not buffered. */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) return Promise.reject(new Rejected(413, `body of ${declared} bytes, more than ${max}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        // Read no further: the answer closes the connection.
        req.pause();
        reject(new Rejected(413, `body over ${max} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * The HTTP handler for registry notifications. The body is untrusted: method, token, size and
 * content type are checked before it is parsed, and the envelope passes a schema
 * (notifications.ts). Each tag push is recorded; the leader then re-resolves the tracked
 * images that name that repository and tag. Answers: 200 (recorded, or nothing to record),
 * 400/401/405/413/415 (refused: a registry would retry these forever, so they are logged), 503
 * (not stored: the registry retries).
 */
export function registryNotificationHandler(o: NotifyEndpointOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const max = o.maxBytes ?? NOTIFY_MAX_BYTES;
  const answer = (res: ServerResponse, status: number, text: string, result: NotifyResult) => {
    o.onResult?.(result);
    res.writeHead(status, { 'content-type': 'text/plain', ...(status === 413 ? { connection: 'close' } : {}) });
    res.end(`${text}\n`);
  };
  return (req, res) => {
    void (async () => {
      try {
        if (req.method !== 'POST') throw new Rejected(405, 'POST only');
        if (o.token !== undefined && !sameToken(req.headers.authorization, o.token)) throw new Rejected(401, 'missing or wrong bearer token');
        const type = String(req.headers['content-type'] ?? '');
        if (!/json/i.test(type)) throw new Rejected(415, `content type "${type.slice(0, 80)}" is not JSON`);
        const body = await readBody(req, max);
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          throw new Rejected(400, 'body is not JSON');
        }
        const parsed = notificationEnvelopeSchema.safeParse(json);
        if (!parsed.success) throw new Rejected(400, `not a registry notification envelope: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
        const pushes = tagPushes(parsed.data);
        if (pushes.length === 0) return answer(res, 200, 'no tag push', 'ignored');
        try {
          await o.record(pushes);
        } catch (err) {
          o.log.warn({ err: (err as Error).message, pushes: pushes.length }, 'registry notification not stored: the registry will send it again');
          return answer(res, 503, 'not stored, retry', 'failed');
        }
        for (const p of pushes) o.log.info({ repository: p.repository, tag: p.tag, digest: p.digest }, 'registry notified a tag push');
        return answer(res, 200, `${pushes.length} tag push(es) recorded`, 'accepted');
      } catch (err) {
        const status = err instanceof Rejected ? err.status : 400;
        o.log.warn({ status, err: (err as Error).message, from: req.socket.remoteAddress }, 'registry notification refused');
        if (!res.headersSent) answer(res, status, (err as Error).message, 'rejected');
      }
    })();
  };
}
