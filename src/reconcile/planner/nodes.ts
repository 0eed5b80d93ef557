import type { EnvironmentGroup } from '../../api/group.js';
import { LABEL_ENV, LABEL_INSTALLATION } from '../../swarm/labels.js';
import type { ObservedNode, SwarmSnapshot } from '../../swarm/model.js';
import { isSchedulable, selectorMatcher } from '../../swarm/node-index.js';
import { isOwned, type Ownership } from '../ownership.js';
import type { Action } from './actions.js';

export interface NodeClaimPlan {
  /** Nodes the environment holds after the plan: kept plus newly claimed. */
  held: ObservedNode[];
  actions: Action[];
  desired: number;
  /** desired − held: the pool could not supply these. */
  missing: number;
}

/** A node belongs to a group's pool when it carries every label of the nodeSelector. */
export function inPool(node: ObservedNode, group: EnvironmentGroup): boolean {
  return poolOf(group)(node);
}

/** `inPool` for one group, for a walk over many nodes: the selector is read once. */
function poolOf(group: EnvironmentGroup): (node: ObservedNode) => boolean {
  return selectorMatcher(group.spec.nodeSelector);
}

/** Running-or-about-to-run tasks per node: the load used to choose which node to claim or release. */
export function taskLoad(snapshot: SwarmSnapshot): Map<string, number> {
  const load = new Map<string, number>();
  for (const t of snapshot.tasks) {
    if (t.desiredState !== 'running' || !t.nodeId) continue;
    load.set(t.nodeId, (load.get(t.nodeId) ?? 0) + 1);
  }
  return load;
}

const byHostname = (a: ObservedNode, b: ObservedNode) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0);

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** murmur3's finalizer: every bit of the input moves about half the bits of the output. */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Nodes are frozen and replaced when they change: a node's hostname is hashed once. */
const hostnameHashes = new WeakMap<ObservedNode, number>();

/**
 * Among equally good free nodes, each environment prefers its own order (rendezvous hashing of
 * environment and node): environments reconciled side by side then seldom reach for the same
 * node, where a shared order would send them all to the first one and make all but one fail
 * their claim and retry. Deterministic, so a replan chooses the same.
 */
function rendezvous(envHash: number, node: ObservedNode): number {
  let host = hostnameHashes.get(node);
  if (host === undefined) hostnameHashes.set(node, (host = mix(fnv1a(node.hostname))));
  return mix(envHash ^ host);
}

/** A free node a claim may take, with what orders it among the others of its zone. */
interface Candidate {
  node: ObservedNode;
  load: number;
  rank: number;
}

/** Fewer tasks first, then the environment's own preference, then hostname (deterministic). */
const compareCandidates = (load: number, rank: number, node: ObservedNode, b: Candidate) => load - b.load || rank - b.rank || byHostname(node, b.node);
const byLoadThenRank = (a: Candidate, b: Candidate) => compareCandidates(a.load, a.rank, a.node, b);

function withoutClaim(labels: Record<string, string>): Record<string, string> {
  const next = { ...labels };
  delete next[LABEL_ENV];
  delete next[LABEL_INSTALLATION];
  return next;
}

function withClaim(labels: Record<string, string>, env: string, o: Ownership): Record<string, string> {
  return { ...labels, [LABEL_ENV]: env, [LABEL_INSTALLATION]: o.installation };
}

/**
 * Which nodes environment `env` should hold. Rules:
 * - claims are exclusive: a node labelled for another environment, or for this one by another
 *   installation, is never taken nor released;
 * - a held node without the installation label (claimed before ids existed) is adopted: the
 *   label is added, nothing else changes;
 * - claims are stable: a schedulable pool node already held stays held (no churn on resync);
 * - a held node that is Down, drained or no longer in the pool is released, and replaced;
 * - growing prefers the zone (`zoneLabel`) with the fewest nodes already held, then the
 *   least-loaded node; shrinking releases the least-loaded held node;
 * - `spare` nodes of the pool are never handed out. The spare count is measured against the
 *   whole pool, Down nodes included, so that when a node is lost its replacement comes out of
 *   the headroom the spare was kept for.
 */
export function planNodeClaims(
  env: string,
  desired: number,
  group: EnvironmentGroup,
  snapshot: SwarmSnapshot,
  o: Ownership,
  zoneLabel = 'zone',
): NodeClaimPlan {
  const load = taskLoad(snapshot);
  const loadOf = (n: ObservedNode) => load.get(n.id) ?? 0;
  const heldNow = snapshot.nodes.claimedBy(env).filter((n) => isOwned(n.labels, env, o)).sort(byHostname);
  const pool = poolOf(group);
  const actions: Action[] = [];
  const release = (n: ObservedNode, reason: string) =>
    actions.push({ kind: 'releaseNode', env, nodeId: n.id, hostname: n.hostname, version: n.version, labels: withoutClaim(n.labels), reason });

  let kept: ObservedNode[] = [];
  for (const n of heldNow) {
    if (!pool(n)) release(n, 'not in the group pool');
    else if (!isSchedulable(n)) release(n, `node is ${n.state}/${n.availability}`);
    else kept.push(n);
  }

  if (kept.length > desired) {
    // Least-loaded first; hostname breaks ties so the choice is deterministic.
    const order = [...kept].sort((a, b) => loadOf(a) - loadOf(b) || byHostname(a, b));
    const drop = new Set(order.slice(0, kept.length - desired).map((n) => n.id));
    for (const n of kept) if (drop.has(n.id)) release(n, 'environment shrank');
    kept = kept.filter((n) => !drop.has(n.id));
  }

  for (const n of kept) {
    if (n.labels[LABEL_INSTALLATION] !== o.installation) {
      actions.push({ kind: 'adoptNode', env, nodeId: n.id, hostname: n.hostname, version: n.version, labels: withClaim(n.labels, env, o) });
    }
  }

  // An environment that holds what it wants (every reconcile of a converged one) claims nothing:
  // the pool, thousands of nodes, is not looked through.
  if (kept.length >= desired) return { held: kept, actions, desired, missing: 0 };
  // The pool's counts are kept by the node index; only its free nodes are looked through, for
  // the best few of each zone (no more can be claimed than are wanted, whatever their zone).
  const wanted = desired - kept.length;
  const poolNodes = snapshot.nodes.pool(group.spec.nodeSelector);
  const poolSize = poolNodes.size;
  const heldByOthers = poolNodes.claimedSchedulable - heldNow.filter((n) => pool(n) && isSchedulable(n)).length;
  const envHash = fnv1a(env);
  const bestOfZone = new Map<string, Candidate[]>();
  let free = 0;
  let assumedByOthers = 0;
  for (const n of poolNodes.free()) {
    const assumed = snapshot.nodes.assumedClaim(n.id);
    if (assumed !== undefined && assumed !== env) {
      assumedByOthers++;
      continue;
    }
    free++;
    const zone = n.labels[zoneLabel] ?? '';
    let best = bestOfZone.get(zone);
    if (!best) bestOfZone.set(zone, (best = []));
    const load = loadOf(n);
    const rank = rendezvous(envHash, n);
    if (best.length === wanted && compareCandidates(load, rank, n, best[wanted - 1]!) >= 0) continue;
    const c: Candidate = { node: n, load, rank };
    const at = best.findIndex((b) => byLoadThenRank(c, b) < 0);
    best.splice(at < 0 ? best.length : at, 0, c);
    if (best.length > wanted) best.pop();
  }
  const capacity = Math.max(0, poolSize - group.spec.spare - heldByOthers - assumedByOthers);
  const room = Math.max(0, Math.min(wanted, capacity - kept.length, free));

  // Each pick: the zone holding the fewest of the environment's nodes, then the best node in it.
  const claimed: ObservedNode[] = [];
  const zoneCount = new Map<string, number>();
  for (const n of kept) zoneCount.set(n.labels[zoneLabel] ?? '', (zoneCount.get(n.labels[zoneLabel] ?? '') ?? 0) + 1);
  for (let i = 0; i < room; i++) {
    let pick: { zone: string; head: Candidate } | undefined;
    for (const [zone, best] of bestOfZone) {
      const head = best[0];
      if (!head) continue;
      const order = pick ? (zoneCount.get(zone) ?? 0) - (zoneCount.get(pick.zone) ?? 0) || byLoadThenRank(head, pick.head) : -1;
      if (order < 0) pick = { zone, head };
    }
    const n = bestOfZone.get(pick!.zone)!.shift()!.node;
    claimed.push(n);
    zoneCount.set(pick!.zone, (zoneCount.get(pick!.zone) ?? 0) + 1);
    actions.push({ kind: 'claimNode', env, nodeId: n.id, hostname: n.hostname, version: n.version, labels: withClaim(n.labels, env, o) });
  }

  const held = [...kept, ...claimed].sort(byHostname);
  return { held, actions, desired, missing: Math.max(0, desired - held.length) };
}

/** Every node `env` still holds: an environment being deleted releases them all. */
export function planReleaseAll(env: string, snapshot: SwarmSnapshot, o: Ownership): Action[] {
  return snapshot.nodes
    .claimedBy(env)
    .filter((n) => isOwned(n.labels, env, o))
    .map((n) => ({
      kind: 'releaseNode' as const,
      env,
      nodeId: n.id,
      hostname: n.hostname,
      version: n.version,
      labels: withoutClaim(n.labels),
      reason: 'environment deleted',
    }));
}
