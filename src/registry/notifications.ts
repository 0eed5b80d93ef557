import { z } from 'zod';
import { parseImageReference, tagOf } from './reference.js';

/**
 * Docker's registry (distribution) notifications: with `notifications.endpoints` in its config,
 * it POSTs an envelope `{"events": [...]}` (`Content-Type:
 * application/vnd.docker.distribution.events.v1+json`) for each push and pull of a manifest or a
 * blob, retrying until it gets a 2xx. berth reads only manifest pushes under a tag: the body is
 * untrusted, so only the fields berth uses are checked, each bounded, and the rest is ignored.
 */
const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** distribution's repository name grammar (path components of lower-case alphanumerics and separators). */
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

const eventSchema = z.object({
  action: z.string().max(32),
  target: z
    .object({
      mediaType: z.string().max(256).optional(),
      repository: z.string().max(255).optional(),
      digest: z.string().max(80).optional(),
      tag: z.string().max(128).optional(),
    })
    .optional(),
});

export const notificationEnvelopeSchema = z.object({ events: z.array(eventSchema).max(1000) });
export type NotificationEnvelope = z.infer<typeof notificationEnvelopeSchema>;

/** A tag pushed in a registry: the manifest its tag now names. */
export interface TagPush {
  repository: string;
  tag: string;
  digest: string;
}

/** Blobs (layers, configs) are pushed under no tag; their events carry these media types. */
const BLOB_MEDIA_TYPE = /^application\/(octet-stream|vnd\.docker\.image\.rootfs|vnd\.oci\.image\.layer|vnd\.docker\.container\.image\.v1\+json|vnd\.oci\.image\.config)/;

/** The tag pushes of an envelope; events of any other kind, or with a field out of its grammar, are left out. */
export function tagPushes(envelope: NotificationEnvelope): TagPush[] {
  const out: TagPush[] = [];
  for (const e of envelope.events) {
    const t = e.target;
    if (e.action !== 'push' || !t?.repository || !t.tag || !t.digest) continue;
    if (t.mediaType && BLOB_MEDIA_TYPE.test(t.mediaType)) continue;
    if (!REPOSITORY.test(t.repository) || !TAG.test(t.tag) || !DIGEST.test(t.digest)) continue;
    out.push({ repository: t.repository, tag: t.tag, digest: t.digest });
  }
  return out;
}

/**
 * What a push concerns: the repository path and tag, whatever the registry host. The host a
 * registry reports is the one its client used (`localhost:5000`, a load balancer's name), not
 * the one a spec names, so a push matches every spec image with that repository and tag; a
 * match on another registry costs one look-up, which finds its digest unchanged.
 */
export function pushKey(repository: string, tag: string): string {
  return `${repository}:${tag}`;
}

/** The push key of a spec image (`10.77.0.1:5000/web:v1` → `web:v1`); undefined for one pinned by digest. */
export function pushKeyOf(image: string): string | undefined {
  const ref = parseImageReference(image);
  return ref.digest ? undefined : pushKey(ref.repository, tagOf(ref));
}

/** The digest last pushed under each repository:tag, as the notifications reported it. */
export class PushedTags {
  private readonly digests = new Map<string, string>();

  record(push: TagPush): void {
    this.digests.set(pushKey(push.repository, push.tag), push.digest);
  }

  forget(key: string): void {
    this.digests.delete(key);
  }

  /** The digest last pushed under the image's repository and tag, if a notification said so. */
  digestFor = (image: string): string | undefined => {
    const key = pushKeyOf(image);
    return key ? this.digests.get(key) : undefined;
  };
}
