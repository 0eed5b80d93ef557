/*
 * Swarm placement constraints (swarmkit manager/constraint): `key==value` or `key!=value`, keys
 * node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<k>,
 * engine.labels.<k>. Values compare case-insensitively, as swarmkit's strings.EqualFold does; a
 * missing label fails `==` and satisfies `!=`.
 */

export interface Constraint {
  key: string;
  equal: boolean;
  value: string;
}

/** Thousands of nodes are checked per placement: keys and values are folded once, here. */
interface Compiled extends Constraint {
  lowerKey: string;
  lowerValue: string;
  /** For node.labels.<k>: k, case kept. */
  label?: string;
}

/** What a constraint can look at on a node. */
export interface ConstraintSubject {
  id: string;
  hostname: string;
  role: string;
  labels: Readonly<Record<string, string>>;
}

export const SIM_PLATFORM = { os: 'linux', arch: 'x86_64' } as const;

const KEY = /^[a-z_][a-z0-9\-_.]+$/i;
const VALUE = /^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i;

export class ConstraintError extends Error {}

export function parseConstraint(expr: string): Constraint {
  const ne = expr.indexOf('!=');
  const eq = expr.indexOf('==');
  const at = ne >= 0 && (eq < 0 || ne < eq) ? ne : eq;
  if (at < 0) throw new ConstraintError(`constraint expected one operator from ==, !=: ${expr}`);
  const key = expr.slice(0, at).trim();
  const value = expr.slice(at + 2).trim();
  if (!KEY.test(key)) throw new ConstraintError(`key '${key}' is invalid`);
  if (!VALUE.test(value) || value.includes('==') || value.includes('!=')) throw new ConstraintError(`value '${value}' is invalid`);
  const lowerKey = key.toLowerCase();
  const compiled: Compiled = { key, equal: at === eq, value, lowerKey, lowerValue: value.toLowerCase() };
  if (lowerKey.startsWith(LABEL_PREFIX)) compiled.label = key.slice(LABEL_PREFIX.length);
  return compiled;
}

const LABEL_PREFIX = 'node.labels.';

export function parseConstraints(exprs: readonly string[] | undefined): Constraint[] {
  return (exprs ?? []).map(parseConstraint);
}

function valueOf(key: string, node: ConstraintSubject, label?: string, lowerKey = key.toLowerCase()): string | undefined {
  if (label !== undefined) return node.labels[label];
  const k = lowerKey;
  if (k === 'node.id') return node.id;
  if (k === 'node.hostname') return node.hostname;
  if (k === 'node.role') return node.role;
  if (k === 'node.platform.os') return SIM_PLATFORM.os;
  if (k === 'node.platform.arch') return SIM_PLATFORM.arch;
  // Label names keep their case; only the prefix is case-insensitive.
  if (k.startsWith(LABEL_PREFIX)) return node.labels[key.slice(LABEL_PREFIX.length)];
  return undefined; // engine labels: the simulated engines have none
}

export function satisfies(node: ConstraintSubject, constraints: readonly Constraint[]): boolean {
  for (const c of constraints as readonly Compiled[]) {
    const actual = valueOf(c.key, node, c.label, c.lowerKey);
    const same = actual !== undefined && (actual === c.value || (actual.length === c.value.length && actual.toLowerCase() === c.lowerValue));
    if (same !== c.equal) return false;
  }
  return true;
}

/**
 * For `node.labels.<k>==<v>`: the label and the value folded to lower case, which every node
 * that satisfies it holds (folded); else undefined.
 */
export function labelEquality(c: Constraint): { label: string; lowerValue: string } | undefined {
  const compiled = c as Compiled;
  return compiled.equal && compiled.label !== undefined ? { label: compiled.label, lowerValue: compiled.lowerValue } : undefined;
}

/** The value a spread preference (`node.labels.zone`) groups a node by; '' when it has none. */
export function spreadValue(descriptor: string, node: ConstraintSubject): string {
  return valueOf(descriptor, node) ?? '';
}
