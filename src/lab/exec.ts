/** Running commands: bounded, with clear errors naming the command. */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';

const SBIN_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The environment for lab commands: PATH always includes the sbin directories (ip, iptables, dockerd, nginx). */
export function labProcessEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const have = (base.PATH ?? '').split(':').filter(Boolean);
  return { ...base, PATH: [...have, ...SBIN_PATH.filter((d) => !have.includes(d))].join(':') };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs a command and resolves with its exit code and output; never rejects for a non-zero exit. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: labProcessEnv(opts.env ?? process.env), killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(new Error(`${cmd}: ${(err as Error).message}`));
          return;
        }
        if (err && err.killed) {
          reject(new Error(`${[cmd, ...args].join(' ')}: timed out after ${opts.timeoutMs ?? 60_000} ms`));
          return;
        }
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs a command and throws with its stderr when it fails. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${[cmd, ...args].join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-2000)}`);
  }
  return r.stdout;
}

const CLOSE_FDS =
  'for fd in /proc/$$/fd/*; do n=${fd##*/}; if [ "$n" -gt 2 ]; then { exec {n}>&-; } 2>/dev/null; fi; done; exec "$@"';

/**
 * Wraps argv so the command starts with only stdin/stdout/stderr open: a daemon must not keep a
 * pipe or lock it inherited (a CI runner waiting for EOF, the test harness's flock). bash execs,
 * so the pid stays the command's.
 */
export function closeFdsArgv(argv: string[]): string[] {
  return ['bash', '-c', CLOSE_FDS, 'berth-lab-exec', ...argv];
}

/**
 * Starts a long-running process in its own session, output appended to `log`, not waited on.
 * Returns its pid.
 */
export function spawnDaemon(argv: string[], log: string, env: NodeJS.ProcessEnv = process.env): number {
  if (argv.length === 0) throw new Error('spawnDaemon: empty argv');
  const [cmd, ...args] = closeFdsArgv(argv) as [string, ...string[]];
  const fd = fs.openSync(log, 'a');
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: labProcessEnv(env) });
    if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
    child.unref();
    return child.pid;
  } finally {
    fs.closeSync(fd);
  }
}

/** Quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
