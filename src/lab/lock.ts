/**
 * An exclusive flock(1) on a lock file, held while the lab is changed (up, down, node stop/start),
 * so concurrent callers serialize. A helper `flock … cat` process holds the lock; closing its
 * stdin (or our exit) releases it, so a crashed holder never leaves a stale lock.
 */
import { spawn } from 'node:child_process';
import { labProcessEnv } from './exec.js';

export async function withLabLock<T>(lockFile: string, fn: () => Promise<T>, timeoutSec = 900): Promise<T> {
  const holder = spawn('flock', ['--exclusive', '--wait', String(timeoutSec), lockFile, '-c', 'echo locked; exec cat'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: labProcessEnv(),
  });
  let stderr = '';
  holder.stderr.on('data', (d) => (stderr += String(d)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    let waitedNote: NodeJS.Timeout | undefined = setTimeout(() => {
      process.stderr.write(`waiting for the lab lock ${lockFile} (another berth lab command is running)…\n`);
      waitedNote = undefined;
    }, 2000);
    const done = (err?: Error) => {
      if (waitedNote) clearTimeout(waitedNote);
      if (err) reject(err);
      else resolve();
    };
    holder.stdout.on('data', (d) => {
      out += String(d);
      if (out.includes('locked')) done();
    });
    holder.on('error', (err) => done(new Error(`flock: ${err.message} (is util-linux installed?)`)));
    holder.on('exit', (code) => done(new Error(`could not lock ${lockFile} within ${timeoutSec} s (flock exit ${code}) ${stderr.trim()}`)));
  });
  try {
    return await fn();
  } finally {
    holder.removeAllListeners('exit');
    holder.stdin.end();
  }
}
