import type { Logger } from 'pino';
import type { SwarmApi, SwarmEvent } from '../swarm/api.js';
import { LABEL_ENV } from '../swarm/labels.js';
import { envKey, groupKey } from './keys.js';
import type { ResourceReader, StatusWriter } from './ports.js';
import { abortableSleep } from '../util/abortable-sleep.js';

/** Where keys come from; the queue dedupes, so over-enqueueing is cheap and safe. */
export interface Enqueue {
  add(key: string): void;
}

/**
 * The environment a Swarm event concerns. Service events carry only the service name
 * (`<env>_<service>[_<color>]`; env names have no `_`), container events carry the container
 * labels berth sets. Node events concern every environment: undefined here.
 */
export function envOfEvent(e: SwarmEvent): string | undefined {
  if (e.type === 'container') return e.attributes[LABEL_ENV];
  if (e.type === 'service' || e.type === 'task') {
    const name = e.attributes.name ?? '';
    const env = name.split('_')[0];
    return name.includes('_') && env ? env : undefined;
  }
  return undefined;
}

/**
 * Every key the controller should look at: environments in etcd, environments with a status
 * (deleted ones still to clean up), environments still owning Swarm objects, and groups.
 */
export async function allKeys(resources: ResourceReader, status: StatusWriter, swarm: SwarmApi): Promise<string[]> {
  const [envNames, statusNames, groups, nodes, services] = await Promise.all([
    resources.listEnvironmentNames(),
    status.listEnvironmentStatusNames(),
    resources.listGroups(),
    swarm.listNodes(),
    swarm.listServices(),
  ]);
  const envs = new Set([...envNames, ...statusNames]);
  for (const n of nodes) if (n.labels[LABEL_ENV]) envs.add(n.labels[LABEL_ENV]);
  for (const s of services) if (s.labels[LABEL_ENV]) envs.add(s.labels[LABEL_ENV]);
  return [...[...envs].sort().map(envKey), ...groups.map((g) => groupKey(g.metadata.name))];
}

/** Periodic full resync: the safety net under the watches (missed events, worker task states). */
export async function runResync(
  intervalMs: number,
  signal: AbortSignal,
  list: () => Promise<string[]>,
  queue: Enqueue,
  log: Logger,
  onSynced: () => void,
): Promise<void> {
  while (!signal.aborted) {
    try {
      for (const k of await list()) queue.add(k);
      onSynced();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'resync failed');
    }
    await abortableSleep(intervalMs, signal);
  }
}

/** Docker events → keys. After a reconnect events may have been missed, so resync everything. */
export async function runSwarmEvents(
  swarm: SwarmApi,
  signal: AbortSignal,
  queue: Enqueue,
  allEnvKeys: () => Promise<string[]>,
  log: Logger,
): Promise<void> {
  const everything = () => {
    allEnvKeys().then(
      (keys) => keys.forEach((k) => queue.add(k)),
      (err: unknown) => log.warn({ err: (err as Error).message }, 'listing keys after a Swarm event failed'),
    );
  };
  await swarm.watchEvents(
    (e) => {
      if (e.type === 'node') return everything();
      const env = envOfEvent(e);
      if (env) queue.add(envKey(env));
    },
    signal,
    () => {
      log.info('docker event stream reconnected: resyncing');
      everything();
    },
  );
}
