/**
 * berth's own image for the lab tests: built by `npm run image` on the lab's manager, on the
 * cached test base (base-image.ts), and pushed to the lab registry so every node can pull it.
 * The tag is a hash of what goes into the image, so a second test file (or a rerun with the
 * same code) reuses the pushed image instead of building again.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runOk } from '../../src/lab/exec.js';
import { ensureBaseImage } from './base-image.js';
import type { TestLab } from './lab.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const INPUTS = ['Dockerfile', 'package.json', 'package-lock.json', 'bin', 'dist', 'crds', 'deploy'];

export interface BuiltImage {
  ref: string;
  /** Seconds spent building and pushing; 0 when the registry had it. */
  buildSeconds: number;
}

/** Requires dist/ to be current (test/run-all.sh builds it). */
export async function ensureBerthImage(lab: TestLab, log: (s: string) => void = () => {}): Promise<BuiltImage> {
  const tag = `test-${inputsHash()}`;
  const ref = `${lab.registry}/berth:${tag}`;
  if (await registryHas(lab.registry, 'berth', tag)) return { ref, buildSeconds: 0 };
  const env = { ...process.env, DOCKER_HOST: lab.env.DOCKER_HOST };
  const t0 = Date.now();
  const base = await ensureBaseImage(env, log);
  log(`building ${ref} on ${base}`);
  await runOk('bash', [path.join(ROOT, 'scripts/image.sh'), '--base', base, '--tag', ref], { env, timeoutMs: 600_000 });
  await runOk('docker', ['push', ref], { env, timeoutMs: 300_000 });
  return { ref, buildSeconds: (Date.now() - t0) / 1000 };
}

function inputsHash(): string {
  const h = crypto.createHash('sha256');
  const add = (rel: string) => {
    const abs = path.join(ROOT, rel);
    const st = fs.statSync(abs);
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(abs).sort()) add(path.join(rel, name));
      return;
    }
    h.update(`${rel}\0${st.mode & 0o111 ? 'x' : '-'}\0`);
    h.update(fs.readFileSync(abs));
  };
  for (const rel of INPUTS) add(rel);
  return h.digest('hex').slice(0, 16);
}

async function registryHas(registry: string, repo: string, tag: string): Promise<boolean> {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    signal: AbortSignal.timeout(5_000),
  });
  return res.status === 200;
}
