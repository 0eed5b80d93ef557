import { LABEL_ENV, LABEL_INSTALLATION } from '../swarm/labels.js';
import type { ObservedNode, SwarmSnapshot } from '../swarm/model.js';

/**
 * Which Swarm objects a reconcile may change: those labelled with this installation's id. An
 * object with `berth.env` but no installation label was made before ids existed (an upgrade);
 * it is adopted only when `adoptUnlabelled` (this installation's etcd holds the environment).
 * An object carrying another installation's id is never ours, whatever its `berth.env`.
 */
export interface Ownership {
  installation: string;
  adoptUnlabelled: boolean;
}

export function isOwned(labels: Record<string, string>, env: string, o: Ownership): boolean {
  if (labels[LABEL_ENV] !== env) return false;
  const id = labels[LABEL_INSTALLATION];
  return id === o.installation || (id === undefined && o.adoptUnlabelled);
}

/** A node claimed for some environment by another installation (or unadoptable): never ours to take or release. */
export function isClaimedByOthers(node: ObservedNode, env: string, o: Ownership): boolean {
  return node.labels[LABEL_ENV] !== undefined && !isOwned(node.labels, env, o);
}

/** The snapshot a reconcile plans on: every node (the pool), but only the services (and their tasks) it owns. */
export function ownedSnapshot(snapshot: SwarmSnapshot, env: string, o: Ownership): SwarmSnapshot {
  const services = snapshot.services.filter((s) => isOwned(s.labels, env, o));
  const ids = new Set(services.map((s) => s.id));
  return { nodes: snapshot.nodes, services, tasks: snapshot.tasks.filter((t) => ids.has(t.serviceId)) };
}
