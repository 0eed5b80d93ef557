/** The state directory: created on up; on down, mounts left under it are lazily unmounted, then it is removed. */
import fs from 'node:fs';
import { run } from './exec.js';

/** Mount points under `dir`, deepest first, from a mountinfo text. Pure. */
export function mountsUnder(mountinfo: string, dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && p.length > 0)
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function unmountUnder(dir: string): Promise<string[]> {
  const left: string[] = [];
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), dir);
    if (points.length === 0) return [];
    for (const p of points) {
      const r = await run('umount', ['-l', p], { timeoutMs: 10_000 });
      if (r.code !== 0) left.push(p);
    }
  }
  return mountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), dir);
}

export async function removeStateDir(dir: string): Promise<void> {
  const left = await unmountUnder(dir);
  if (left.length > 0) throw new Error(`could not unmount under ${dir}: ${left.join(', ')}`);
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}
