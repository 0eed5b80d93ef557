import { LABEL_ENV } from './labels.js';
import type { ObservedNode } from './model.js';

/** A node by its id: a `Map` of them, or a `NodeIndex`. */
export interface NodeLookup {
  get(id: string): ObservedNode | undefined;
}

/** Only Ready + Active nodes are claimed or kept: a Down or drained node runs nothing. */
export function isSchedulable(node: ObservedNode): boolean {
  return node.state === 'ready' && node.availability === 'active';
}

/** Whether a node carries every label of `selector`, for a walk over many nodes: the selector is read once. */
export function selectorMatcher(selector: Record<string, string>): (node: ObservedNode) => boolean {
  const keys = Object.keys(selector);
  const values = keys.map((k) => selector[k]);
  return (node) => {
    for (let i = 0; i < keys.length; i++) if (node.labels[keys[i]!] !== values[i]) return false;
    return true;
  };
}

/** A node pool: the nodes carrying every label of a selector (a group's `nodeSelector`). */
export interface NodePool {
  /** Nodes in the pool, whatever their state or claim. */
  readonly size: number;
  /** Nodes of the pool claimed by some environment (any installation) and schedulable. */
  readonly claimedSchedulable: number;
  /** Nodes of the pool no environment claims and that are schedulable: what a claim may take. */
  free(): IterableIterator<ObservedNode>;
}

/**
 * The Swarm's nodes by id and by the environment that claims them. A reconcile reads its own
 * few nodes through it; walking the thousands of a large Swarm on every reconcile was most of
 * the controller's CPU at scale. A claim that needs a node looks through its pool's free ones.
 */
export interface NodeIndex extends NodeLookup {
  readonly size: number;
  values(): IterableIterator<ObservedNode>;
  /** The nodes labelled `berth.env=<env>`, by any installation. */
  claimedBy(env: string): ObservedNode[];
  /** The pool of `selector`, kept current from then on as nodes change. */
  pool(selector: Record<string, string>): NodePool;
  /**
   * Claims planned and on their way to Docker (kube-scheduler's assumed pods): a reconcile of
   * another environment planning meanwhile leaves these nodes alone instead of reaching for the
   * same ones and failing on the node's version. An assumption ends when the node is read claimed,
   * or is forgotten. Docker's version check stays the guarantee; this only spares the collisions.
   */
  assumeClaim(nodeId: string, env: string): void;
  forgetAssumed(nodeId: string): void;
  /** The environment whose claim of the node is on its way, if one. */
  assumedClaim(nodeId: string): string | undefined;
}

/** A `NodeIndex` kept current one node at a time (the Swarm cache's). */
export class NodeTable implements NodeIndex {
  private readonly byId = new Map<string, ObservedNode>();
  private readonly byClaim = new Map<string, Map<string, ObservedNode>>();
  /** By selector (its canonical key): a few groups, each counted once and then kept as nodes change. */
  private readonly pools = new Map<string, PoolCount>();
  private readonly assumed = new Map<string, string>();

  static of(nodes: Iterable<ObservedNode>): NodeTable {
    const table = new NodeTable();
    for (const n of nodes) table.set(n);
    return table;
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): ObservedNode | undefined {
    return this.byId.get(id);
  }

  values(): IterableIterator<ObservedNode> {
    return this.byId.values();
  }

  claimedBy(env: string): ObservedNode[] {
    return [...(this.byClaim.get(env)?.values() ?? [])];
  }

  pool(selector: Record<string, string>): NodePool {
    const key = JSON.stringify(Object.entries(selector).sort(([a], [b]) => (a < b ? -1 : 1)));
    let pool = this.pools.get(key);
    if (!pool) {
      this.pools.set(key, (pool = new PoolCount(selector)));
      for (const n of this.byId.values()) pool.add(n);
    }
    return pool;
  }

  assumeClaim(nodeId: string, env: string): void {
    this.assumed.set(nodeId, env);
  }

  forgetAssumed(nodeId: string): void {
    this.assumed.delete(nodeId);
  }

  assumedClaim(nodeId: string): string | undefined {
    return this.assumed.get(nodeId);
  }

  set(node: ObservedNode): void {
    this.delete(node.id);
    this.byId.set(node.id, node);
    if (node.labels[LABEL_ENV] !== undefined) this.assumed.delete(node.id);
    for (const pool of this.pools.values()) pool.add(node);
    const env = node.labels[LABEL_ENV];
    if (env === undefined) return;
    let claimed = this.byClaim.get(env);
    if (!claimed) this.byClaim.set(env, (claimed = new Map()));
    claimed.set(node.id, node);
  }

  delete(id: string): void {
    const held = this.byId.get(id);
    if (!held) return;
    this.byId.delete(id);
    for (const pool of this.pools.values()) pool.remove(held);
    const env = held.labels[LABEL_ENV];
    if (env === undefined) return;
    const claimed = this.byClaim.get(env);
    claimed?.delete(id);
    if (claimed?.size === 0) this.byClaim.delete(env);
  }
}

/** One pool's figures, changed node by node as the table changes. */
class PoolCount implements NodePool {
  size = 0;
  claimedSchedulable = 0;
  private readonly freeNodes = new Map<string, ObservedNode>();
  private readonly inPool: (node: ObservedNode) => boolean;

  constructor(selector: Record<string, string>) {
    this.inPool = selectorMatcher(selector);
  }

  free(): IterableIterator<ObservedNode> {
    return this.freeNodes.values();
  }

  add(n: ObservedNode): void {
    this.count(n, 1);
  }

  remove(n: ObservedNode): void {
    this.count(n, -1);
  }

  private count(n: ObservedNode, sign: 1 | -1): void {
    if (!this.inPool(n)) return;
    this.size += sign;
    if (!isSchedulable(n)) return;
    if (n.labels[LABEL_ENV] !== undefined) this.claimedSchedulable += sign;
    else if (sign > 0) this.freeNodes.set(n.id, n);
    else this.freeNodes.delete(n.id);
  }
}
