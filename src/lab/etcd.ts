/** etcd on 127.0.0.1:2379, data in the state dir. */
import fs from 'node:fs';
import path from 'node:path';
import type { LabPlan } from './plan.js';
import { spawnDaemon } from './exec.js';
import { recordAlive, stopPid, tail } from './procs.js';
import type { LabState } from './state.js';
import { waitFor } from './wait.js';
import { httpGet } from './http.js';

export function etcdArgv(plan: Pick<LabPlan, 'etcd'>): string[] {
  const { dataDir, clientUrl, nodesUrl, peerUrl } = plan.etcd;
  return [
    'etcd',
    '--name', 'berth-lab',
    '--data-dir', dataDir,
    '--listen-client-urls', `${clientUrl},${nodesUrl}`,
    '--advertise-client-urls', `${clientUrl},${nodesUrl}`,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `berth-lab=${peerUrl}`,
  ];
}

export async function etcdHealthy(plan: LabPlan): Promise<boolean> {
  try {
    const r = await httpGet(`${plan.etcd.clientUrl}/health`, 2_000);
    return r.status === 200 && r.body.includes('true');
  } catch {
    return false;
  }
}

export async function ensureEtcd(plan: LabPlan, state: LabState, save: () => void): Promise<boolean> {
  const running = state.processes.etcd;
  if (recordAlive(running)) {
    if (sameArgv(running!.argv, etcdArgv(plan))) return false;
    // Started by an older lab (e.g. without the bridge address): restart it on the same data.
    await stopPid(running!.pid, running!.marker, 10_000);
    delete state.processes.etcd;
    save();
  }
  if (await etcdHealthy(plan)) {
    throw new Error(`something else already answers on ${plan.etcd.clientUrl}; the lab's etcd needs that address`);
  }
  fs.mkdirSync(path.dirname(plan.etcd.dataDir), { recursive: true });
  const argv = etcdArgv(plan);
  const pid = spawnDaemon(argv, plan.etcd.log, process.arch === 'arm64' ? { ...process.env, ETCD_UNSUPPORTED_ARCH: 'arm64' } : process.env);
  state.processes.etcd = { pid, argv, log: plan.etcd.log, marker: plan.etcd.dataDir, startedAt: new Date().toISOString() };
  save();
  await waitFor(
    `etcd at ${plan.etcd.clientUrl}`,
    async () => {
      if (!recordAlive(state.processes.etcd)) throw new Error(`etcd exited:\n${tail(plan.etcd.log)}`);
      return etcdHealthy(plan);
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  return true;
}

function sameArgv(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
