import { LABEL_ENV } from './labels.js';
import type { ObservedNode } from './model.js';

/** A node by its id: a `Map` of them, or a `NodeIndex`. */
export interface NodeLookup {
  get(id: string): ObservedNode | undefined;
}

/**
 * The Swarm's nodes by id and by the environment that claims them. A reconcile reads its own
 * few nodes through it; walking the thousands of a large Swarm on every reconcile was most of
 * the controller's CPU at scale. Only a claim that needs a free node looks through `values()`.
 */
export interface NodeIndex extends NodeLookup {
  readonly size: number;
  values(): IterableIterator<ObservedNode>;
  /** The nodes labelled `berth.env=<env>`, by any installation. */
  claimedBy(env: string): ObservedNode[];
}

/** A `NodeIndex` kept current one node at a time (the Swarm cache's). */
export class NodeTable implements NodeIndex {
  private readonly byId = new Map<string, ObservedNode>();
  private readonly byClaim = new Map<string, Map<string, ObservedNode>>();

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

  set(node: ObservedNode): void {
    this.delete(node.id);
    this.byId.set(node.id, node);
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
    const env = held.labels[LABEL_ENV];
    if (env === undefined) return;
    const claimed = this.byClaim.get(env);
    claimed?.delete(id);
    if (claimed?.size === 0) this.byClaim.delete(env);
  }
}
