import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

/**
 * The parts of driving nginx that touch the operating system: running the check and reload
 * commands, telling from /proc when the old workers of a graceful reload stopped accepting, and
 * writing the config file atomically.
 */
export function runShell(cmd: string, timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', cmd], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (!err) resolve({ code: 0, output });
      else resolve({ code: typeof err.code === 'number' ? err.code : 1, output: output || err.message });
    });
  });
}

export async function readOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The pid of the nginx master in `pidFile`, when the file names one. */
export async function nginxMaster(pidFile: string): Promise<number | undefined> {
  const master = Number((await readOrUndefined(pidFile))?.trim());
  return Number.isInteger(master) && master > 0 ? master : undefined;
}

/** Worker pids of the nginx master in `pidFile` that still accept (not "shutting down"). */
export async function nginxWorkers(pidFile: string): Promise<number[]> {
  const master = await nginxMaster(pidFile);
  if (master === undefined) return [];
  const out: number[] = [];
  for (const pid of await childrenOf(master)) if (await acceptingWorker(pid)) out.push(pid);
  return out;
}

/**
 * The children of `pid`: from /proc/<pid>/task/<pid>/children when the kernel has it (one read),
 * else by scanning every process's parent (tens of ms on a busy host: paid on every reload).
 */
async function childrenOf(pid: number): Promise<number[]> {
  const listed = await readOrUndefined(`/proc/${pid}/task/${pid}/children`).catch(() => undefined);
  if (listed !== undefined) return listed.split(/\s+/).filter((p) => p !== '').map(Number);
  const out: number[] = [];
  for (const e of await fsp.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(e)) continue;
    const stat = await readOrUndefined(`/proc/${e}/stat`).catch(() => undefined);
    if (!stat) continue;
    // pid (comm) state ppid ...: comm may contain spaces, so parse after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(e));
  }
  return out;
}

async function acceptingWorker(pid: number): Promise<boolean> {
  const cmdline = await readOrUndefined(`/proc/${pid}/cmdline`).catch(() => undefined);
  return cmdline !== undefined && cmdline.includes('worker process') && !cmdline.includes('shutting down');
}

export async function oldWorkersRetired(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let alive = false;
    for (const p of pids) if (await acceptingWorker(p)) alive = true;
    if (!alive) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function writeAtomic(file: string, content: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await fsp.writeFile(tmp, content, { mode: 0o644 });
  await fsp.rename(tmp, file);
}
