import { formatAge } from '../api/index.js';
import type { EnvironmentStatus } from '../api/status.js';
import { orphanedCondition } from '../reconcile/orphans.js';
import type { EtcdClient } from '../store/client.js';
import { resourcePrefix } from '../store/keys.js';
import { StatusStore } from '../store/status.js';

/** An environment whose key vanished without `berth delete`, as the controller recorded it in its status. */
export interface OrphanedEnvironment {
  name: string;
  /** GracePeriod | LastEnvironment | MassDeletion */
  reason: string;
  since: string;
  message: string;
  services: string[];
  nodes: string[];
}

/** Every orphaned environment: a status with condition Orphaned and no environment key. */
export async function listOrphans(client: EtcdClient, warn: (message: string) => void = () => {}): Promise<OrphanedEnvironment[]> {
  const [names, statuses] = await Promise.all([
    client.names(resourcePrefix(client.prefix, 'Environment')),
    new StatusStore(client).listStatuses('Environment', (err) => warn(err.message)),
  ]);
  const present = new Set(names);
  const out: OrphanedEnvironment[] = [];
  for (const [name, status] of [...statuses].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const held = orphanedCondition(status);
    if (!held || present.has(name)) continue;
    out.push({ name, reason: held.reason, since: held.lastTransitionTime, message: held.message, services: serviceNames(status), nodes: status.nodes.map((n) => n.hostname) });
  }
  return out;
}

function serviceNames(status: EnvironmentStatus): string[] {
  return Object.keys(status.services).sort();
}

export function orphanRows(orphans: OrphanedEnvironment[], now: Date): { headers: string[]; rows: string[][] } {
  return {
    headers: ['NAME', 'HELD', 'SINCE', 'SERVICES', 'NODES', 'MESSAGE'],
    rows: orphans.map((o) => [o.name, o.reason, formatAge(now.getTime() - Date.parse(o.since)), o.services.join(',') || '<none>', o.nodes.join(',') || '<none>', o.message]),
  };
}
