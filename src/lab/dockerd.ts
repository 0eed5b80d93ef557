/**
 * One dockerd per node, in the node's network namespace (entered with nsenter, not `ip netns
 * exec`, which hides the cgroup mounts) and its own UTS namespace (hostname lab-N).
 */
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import type { LabPlan, NodePlan } from './plan.js';
import { netnsPath } from './net.js';
import { spawnDaemon } from './exec.js';
import { readPidFile, recordAlive, stopPid, tail } from './procs.js';
import type { LabState, ProcessRecord } from './state.js';
import { waitFor } from './wait.js';

export function dockerdArgv(plan: Pick<LabPlan, 'registry'>, node: NodePlan): string[] {
  return [
    'nsenter',
    `--net=${netnsPath(node.netns)}`,
    'unshare',
    '--uts',
    'sh',
    '-c',
    'hostname "$0" && exec "$@"',
    node.hostname,
    'dockerd',
    '--config-file', node.configFile,
    '--data-root', node.dataRoot,
    '--exec-root', node.execRoot,
    '-H', `unix://${node.socket}`,
    '--pidfile', node.pidfile,
    '--storage-driver', 'vfs',
    '--insecure-registry', plan.registry.addr,
    '--shutdown-timeout', '5',
  ];
}

export function dockerFor(node: Pick<NodePlan, 'socket'>, timeoutMs = 30_000): Docker {
  return new Docker({ socketPath: node.socket, timeout: timeoutMs });
}

export const dockerdKey = (node: NodePlan) => `dockerd-${node.index}`;
export const containerdKey = (node: NodePlan) => `containerd-${node.index}`;

/** Starts the node's dockerd if its recorded pid is not running; waits until it answers. */
export async function ensureDockerd(plan: LabPlan, node: NodePlan, state: LabState, save: () => void): Promise<boolean> {
  const key = dockerdKey(node);
  if (recordAlive(state.processes[key])) return false;
  fs.mkdirSync(node.dir, { recursive: true });
  fs.writeFileSync(node.configFile, '{}\n');
  fs.rmSync(node.socket, { force: true });
  fs.rmSync(node.pidfile, { force: true });
  const argv = dockerdArgv(plan, node);
  // nsenter, unshare and sh all exec, so the pid we spawn becomes dockerd's pid.
  const pid = spawnDaemon(argv, node.log);
  state.processes[key] = { pid, argv, log: node.log, marker: node.socket, startedAt: new Date().toISOString() };
  save();
  const docker = dockerFor(node, 5_000);
  await waitFor(
    `dockerd on ${node.hostname} (${node.socket}); log ${node.log}`,
    async () => {
      if (!recordAlive(state.processes[key])) throw new Error(`dockerd exited:\n${tail(node.log)}`);
      await docker.ping();
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 300 },
  );
  // dockerd runs its own containerd; record it so down can stop it if dockerd dies uncleanly.
  const cpid = readPidFile(path.join(node.execRoot, 'containerd', 'containerd.pid'));
  if (cpid) {
    const rec: ProcessRecord = { pid: cpid, argv: ['containerd'], log: node.log, marker: node.execRoot, startedAt: new Date().toISOString() };
    state.processes[containerdKey(node)] = rec;
    save();
  }
  return true;
}

/** Stops the node's dockerd (and its containerd) by recorded pid. */
export async function stopDockerd(node: NodePlan, state: LabState, save: () => void): Promise<void> {
  const rec = state.processes[dockerdKey(node)];
  if (rec) await stopPid(rec.pid, rec.marker, 20_000);
  const crec = state.processes[containerdKey(node)];
  if (crec) await stopPid(crec.pid, crec.marker, 10_000);
  delete state.processes[dockerdKey(node)];
  delete state.processes[containerdKey(node)];
  save();
}
