import type { ImageResolver } from '../../src/reconcile/ports.js';
import { RegistryError } from '../../src/registry/errors.js';

/** An in-memory registry of tags for the reconciler's tests; every lookup is recorded. */
export class FakeResolver implements ImageResolver {
  tags = new Map<string, string>();
  lookups: string[] = [];
  /** While set, every lookup fails as an unreachable registry. */
  down = false;

  /** Points `ref` at a digest made of `fill` (one hex character). */
  push(ref: string, fill: string): string {
    const digest = `sha256:${fill.repeat(64)}`;
    this.tags.set(ref, digest);
    return digest;
  }

  async resolveDigest(ref: string): Promise<string> {
    this.lookups.push(ref);
    if (this.down) throw new RegistryError(`resolve ${ref}`, 'unreachable', 'connect ECONNREFUSED');
    const digest = this.tags.get(ref);
    if (!digest) throw new RegistryError(`resolve ${ref}`, 'not-found', 'HTTP 404');
    return digest;
  }
}
