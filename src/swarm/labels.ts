import type { Color } from '../api/status.js';

/**
 * The names berth writes into Swarm (docs/keys.md). Ownership is by label: whatever carries
 * `berth.env=<env>` and this installation's `berth.installation=<id>` belongs to that environment.
 */
export const LABEL_ENV = 'berth.env';
/** The installation (etcd `<prefix>/installation`) that made the object: berth touches only its own. */
export const LABEL_INSTALLATION = 'berth.installation';
export const LABEL_SERVICE = 'berth.service';
export const LABEL_COLOR = 'berth.color';
export const LABEL_SPEC_HASH = 'berth.spec-hash';
export const LABEL_STACK_NAMESPACE = 'com.docker.stack.namespace';

/** `<env>_<service>`, or `<env>_<service>_<color>` for blue-green. */
export function swarmServiceName(env: string, service: string, color?: Color): string {
  return color ? `${env}_${service}_${color}` : `${env}_${service}`;
}

/** The constraint every berth service carries: only nodes claimed by its environment. */
export function envConstraint(env: string): string {
  return `node.labels.${LABEL_ENV}==${env}`;
}
