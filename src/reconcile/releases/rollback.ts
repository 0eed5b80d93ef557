import type { Environment, EnvironmentStatus, RollbackRequest } from '../../api/index.js';

/** Each service's image as the spec names it: what a rollback without spec.promotion is held against. */
export function specImages(env: Environment): Record<string, string> {
  return Object.fromEntries(Object.entries(env.spec.services).map(([svc, s]) => [svc, s.image]));
}

function sameImages(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/**
 * Without spec.promotion, a `berth rollback` holds while the spec names exactly the images it
 * named when the rollback was asked: a service's image edited, or a service added or removed,
 * ends it (a replica count, a tracked tag moving in the registry or any other field does not).
 * With spec.promotion the next promotion ends it instead (promotion.ts).
 */
export function activeSpecRollback(env: Environment, request: RollbackRequest | undefined): RollbackRequest | undefined {
  if (env.spec.promotion || !request?.specImages) return undefined;
  return sameImages(specImages(env), request.specImages) ? request : undefined;
}

/** A rollback needs an earlier release: an environment with at most one never has one to read. */
export function mayHaveRollback(previous: Pick<EnvironmentStatus, 'history'> | undefined): boolean {
  return (previous?.history?.length ?? 0) > 1;
}

/** The environment running the rolled-back release's images in place of the spec's (services it has). */
export function withRollback(env: Environment, rollback: RollbackRequest): Environment {
  const services = Object.fromEntries(
    Object.entries(env.spec.services).map(([svc, s]) => [svc, rollback.images[svc] ? { ...s, image: rollback.images[svc] } : s]),
  );
  return { ...env, spec: { ...env.spec, services } };
}
