import type { DockerServiceSpec } from '../../swarm/service-spec.js';

/**
 * What the planner asks the reconciler to do. Each action carries the object version it was
 * planned against: Swarm rejects an update of a node or service that changed since, and the
 * reconcile is retried on a fresh snapshot (optimistic concurrency, no lost updates).
 */
export type Action =
  | { kind: 'claimNode'; env: string; nodeId: string; hostname: string; version: number; labels: Record<string, string> }
  | { kind: 'adoptNode'; env: string; nodeId: string; hostname: string; version: number; labels: Record<string, string> }
  | { kind: 'releaseNode'; env: string; nodeId: string; hostname: string; version: number; labels: Record<string, string>; reason: string }
  | { kind: 'createService'; env: string; service: string; name: string; spec: DockerServiceSpec }
  | {
      kind: 'updateService';
      env: string;
      service: string;
      name: string;
      id: string;
      version: number;
      spec: DockerServiceSpec;
      reason: UpdateReason;
    }
  | { kind: 'removeService'; env: string; service: string; name: string; id: string; reason: string };

/**
 * spec-changed: a new version (berth.spec-hash differs). replicas-drifted: the same version at
 * another replica count (the spec was resized, or someone scaled by hand), updated in place.
 * labels-tampered: berth's labels were edited by hand. adopted: made before installation ids
 * existed; only the installation label is added (service labels only: no task restarts).
 */
export type UpdateReason = 'spec-changed' | 'replicas-drifted' | 'labels-tampered' | 'adopted';

/** One line per action for the log, e.g. `claimNode lab-2`. */
export function describeAction(a: Action): string {
  switch (a.kind) {
    case 'claimNode':
    case 'adoptNode':
    case 'releaseNode':
      return `${a.kind} ${a.hostname}`;
    default:
      return `${a.kind} ${a.name}`;
  }
}
