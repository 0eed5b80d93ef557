/** The lab's private registry (Debian's docker-registry, distribution 2.x) on the bridge address. */
import fs from 'node:fs';
import path from 'node:path';
import type { LabPlan } from './plan.js';
import { spawnDaemon } from './exec.js';
import { httpGet } from './http.js';
import { recordAlive, tail } from './procs.js';
import type { LabState } from './state.js';
import { waitFor } from './wait.js';

/** The start of a registry config over the lab's storage: both lab registries serve the same one. */
export function storageConfigHead(plan: Pick<LabPlan, 'registry'>): string[] {
  return ['version: 0.1', 'log:', '  level: info', 'storage:', '  filesystem:', `    rootdirectory: ${plan.registry.storage}`];
}

export function registryConfig(plan: Pick<LabPlan, 'registry'>): string {
  return [
    ...storageConfigHead(plan),
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${plan.registry.addr}`,
    '',
  ].join('\n');
}

export function registryArgv(plan: Pick<LabPlan, 'registry'>): string[] {
  return ['docker-registry', 'serve', plan.registry.config];
}

export async function registryUp(plan: LabPlan): Promise<boolean> {
  try {
    return (await httpGet(`http://${plan.registry.addr}/v2/`, 2_000)).status === 200;
  } catch {
    return false;
  }
}

export async function ensureRegistry(plan: LabPlan, state: LabState, save: () => void): Promise<boolean> {
  if (recordAlive(state.processes.registry)) return false;
  if (await registryUp(plan)) throw new Error(`something else already answers on ${plan.registry.addr}`);
  fs.mkdirSync(plan.registry.storage, { recursive: true });
  fs.writeFileSync(plan.registry.config, registryConfig(plan));
  const argv = registryArgv(plan);
  const pid = spawnDaemon(argv, plan.registry.log);
  state.processes.registry = { pid, argv, log: plan.registry.log, marker: plan.registry.config, startedAt: new Date().toISOString() };
  save();
  await waitFor(
    `registry at ${plan.registry.addr}`,
    async () => {
      if (!recordAlive(state.processes.registry)) throw new Error(`docker-registry exited:\n${tail(plan.registry.log)}`);
      return registryUp(plan);
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  return true;
}

/** Tags present for a repository in the lab registry. */
export async function registryTags(plan: LabPlan, repo: string): Promise<string[]> {
  const r = await httpGet(`http://${plan.registry.addr}/v2/${repo}/tags/list`, 5_000);
  if (r.status === 404) return [];
  if (r.status !== 200) throw new Error(`registry tags/list for ${repo}: HTTP ${r.status}`);
  const body = JSON.parse(r.body) as { tags?: string[] | null };
  return body.tags ?? [];
}

export const registryDir = (plan: LabPlan) => path.dirname(plan.registry.config);
