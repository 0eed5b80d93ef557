/**
 * The state record: everything the lab made (pids, namespaces, links, iptables rules), so that
 * `down` removes exactly those. Stored as JSON in <stateDir>/state.json, written atomically.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export const ProcessRecord = z.object({
  pid: z.number().int().positive(),
  argv: z.array(z.string()),
  log: z.string(),
  /** A string that must appear in /proc/PID/cmdline for the pid to still be ours (guards pid reuse). */
  marker: z.string(),
  startedAt: z.string(),
});
export type ProcessRecord = z.infer<typeof ProcessRecord>;

export const LabState = z.object({
  version: z.literal(1),
  stateDir: z.string(),
  nodes: z.number().int().positive(),
  managers: z.number().int().positive(),
  createdAt: z.string(),
  /** Keyed by part name: etcd, registry, nginx, dockerd-1, containerd-1, … */
  processes: z.record(z.string(), ProcessRecord),
  bridge: z.string().optional(),
  netns: z.array(z.string()),
  links: z.array(z.string()),
  /** iptables rule specs (argv after the -I/-D CHAIN), e.g. ["FORWARD","-i","berth0",…]. */
  iptables: z.array(z.array(z.string())),
  /** Files the lab created outside its state dir (e.g. a temporary policy-rc.d). */
  files: z.array(z.string()).default([]),
  /** Directories the lab created outside its state dir (a certs.d entry), removed on down when empty. */
  dirs: z.array(z.string()).default([]),
});
export type LabState = z.infer<typeof LabState>;

export function emptyState(stateDir: string, nodes: number, managers: number, now = new Date()): LabState {
  return {
    version: 1,
    stateDir,
    nodes,
    managers,
    createdAt: now.toISOString(),
    processes: {},
    netns: [],
    links: [],
    iptables: [],
    files: [],
    dirs: [],
  };
}

export function parseState(text: string, source = 'state.json'): LabState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: not JSON: ${(err as Error).message}`);
  }
  const res = LabState.safeParse(raw);
  if (!res.success) {
    const msg = res.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`${source}: invalid lab state: ${msg}`);
  }
  return res.data;
}

export function serializeState(state: LabState): string {
  return JSON.stringify(state, null, 2) + '\n';
}

export function readState(stateFile: string): LabState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(stateFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseState(text, stateFile);
}

export function writeState(stateFile: string, state: LabState): void {
  fs.mkdirSync(path.dirname(stateFile), { recursive: true });
  const tmp = `${stateFile}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, serializeState(state));
  fs.renameSync(tmp, stateFile);
}

/** Adds an item to a list in the record once. */
export function addOnce<T>(list: T[], item: T, eq: (a: T, b: T) => boolean = (a, b) => a === b): void {
  if (!list.some((x) => eq(x, item))) list.push(item);
}

export function sameRule(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
