/**
 * Processes the lab started: liveness by recorded pid (checked against a marker in the command
 * line so a reused pid is never mistaken for ours), and stopping by pid: SIGTERM, wait, SIGKILL.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabPlan } from './plan.js';
import type { ProcessRecord } from './state.js';
import { sleep } from './wait.js';

/** The process's argv from /proc, or undefined when it is gone or a zombie. */
export function procCmdline(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return undefined;
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s) => s.length > 0);
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number, marker?: string): boolean {
  const argv = procCmdline(pid);
  if (!argv) return false;
  return marker === undefined || argv.join(' ').includes(marker);
}

export function recordAlive(rec: ProcessRecord | undefined): boolean {
  return rec !== undefined && isAlive(rec.pid, rec.marker);
}

/** Stops one pid: SIGTERM, wait up to graceMs, then SIGKILL and wait up to 5 s. Returns how it ended. */
export async function stopPid(pid: number, marker: string | undefined, graceMs = 15_000): Promise<'gone' | 'terminated' | 'killed'> {
  if (!isAlive(pid, marker)) return 'gone';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'gone';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid, marker)) return 'terminated';
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'terminated';
  }
  const killDeadline = Date.now() + 5_000;
  while (Date.now() < killDeadline) {
    if (!isAlive(pid, marker)) return 'killed';
    await sleep(100);
  }
  throw new Error(`pid ${pid} survived SIGKILL`);
}

/** The last lines of a log file, for error messages. */
export function tail(file: string, lines = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n').trim();
  } catch {
    return '(no log)';
  }
}

export function readPidFile(file: string): number | undefined {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Daemons the lab runs (by executable name), to look for leftovers after down. */
const LAB_DAEMON_EXES = ['dockerd', 'containerd', 'etcd', 'nginx', 'docker-registry', 'docker-proxy', 'runc'];

function exeName(pid: number): string | undefined {
  try {
    return path.basename(fs.readlinkSync(`/proc/${pid}/exe`)).replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}

function livePids(): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => p !== process.pid);
}

/** containerd-shim processes attached to one of the lab nodes' containerd sockets. */
export function labShims(plan: LabPlan): number[] {
  const sockets = plan.nodes.map((n) => path.join(n.execRoot, 'containerd', 'containerd.sock'));
  return livePids().filter((pid) => {
    if (!(exeName(pid) ?? '').startsWith('containerd-shim')) return false;
    const argv = procCmdline(pid) ?? [];
    return sockets.some((s) => argv.includes(s));
  });
}

/**
 * Live daemon processes (dockerd, containerd, shims, etcd, nginx, registry…) whose command line
 * names the state dir: what must be gone after down. Only a check; down never kills by this.
 */
export function labDaemonsReferencing(stateDir: string): number[] {
  return livePids().filter((pid) => {
    const exe = exeName(pid) ?? '';
    if (!LAB_DAEMON_EXES.includes(exe) && !exe.startsWith('containerd-shim')) return false;
    const argv = procCmdline(pid);
    return argv !== undefined && argv.join(' ').includes(stateDir + '/');
  });
}
