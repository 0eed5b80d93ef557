/**
 * Test images built without the internet: a busybox-static root filesystem imported with
 * `docker import` semantics (dockerode importImage) on the first node, pushed to the lab registry.
 *
 *   web:v1, web:v2  CMD httpd -f -p 8080 -h /www; GET / answers exactly "v1" / "v2", GET /healthz "ok";
 *                   default HEALTHCHECK: wget http://127.0.0.1:8080/healthz every 1 s.
 *   web:broken      never healthy: its CMD runs httpd on port 8081 (nothing listens on 8080), and its
 *                   /www has neither index.html nor healthz, so even a command forcing port 8080
 *                   answers 404 to / and /healthz. The task keeps running (it does not crash-loop).
 */
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import type { LabPlan } from './plan.js';
import { runOk } from './exec.js';
import { STATIC_BUSYBOX } from './packages.js';
import { registryTags } from './registry.js';

export type WebVariant = 'v1' | 'v2' | 'broken';
export const WEB_VARIANTS: WebVariant[] = ['v1', 'v2', 'broken'];
export const WEB_REPO = 'web';
export const HEALTH_CMD = 'wget -q -O- http://127.0.0.1:8080/healthz || exit 1';

export function imageRef(plan: Pick<LabPlan, 'registry'>, variant: WebVariant): string {
  return `${plan.registry.addr}/${WEB_REPO}:${variant}`;
}

/** The Dockerfile-style changes applied on import. */
export function importChanges(variant: WebVariant): string[] {
  const port = variant === 'broken' ? 8081 : 8080;
  return [
    `CMD ["/bin/httpd", "-f", "-p", "${port}", "-h", "/www"]`,
    'ENV PATH=/bin',
    'EXPOSE 8080',
    `HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD ${HEALTH_CMD}`,
    `LABEL berth.lab.variant=${variant}`,
  ];
}

/** Files of the root filesystem other than busybox and its applet links. */
export function rootfsFiles(variant: WebVariant): Record<string, string> {
  const files: Record<string, string> = {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
    'etc/group': 'root:x:0:\nnogroup:x:65534:\n',
    'etc/hosts': '127.0.0.1 localhost\n',
  };
  if (variant !== 'broken') {
    files['www/index.html'] = variant;
    files['www/healthz'] = 'ok\n';
  } else {
    files['www/README'] = 'broken on purpose: no index.html, no healthz, httpd on 8081\n';
  }
  return files;
}

async function buildRootfs(dir: string, variant: WebVariant): Promise<void> {
  fs.rmSync(dir, { recursive: true, force: true });
  for (const d of ['bin', 'etc', 'tmp', 'www', 'root', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  fs.copyFileSync(STATIC_BUSYBOX, path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  const applets = (await runOk(STATIC_BUSYBOX, ['--list'])).split('\n').map((s) => s.trim()).filter((s) => /^[a-z0-9_.[-]+$/.test(s));
  for (const a of applets) {
    if (a === 'busybox') continue;
    fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  }
  for (const [rel, content] of Object.entries(rootfsFiles(variant))) fs.writeFileSync(path.join(dir, rel), content);
}

async function follow(docker: Docker, stream: NodeJS.ReadableStream, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
        if (err) return reject(new Error(`${what}: ${err.message}`));
        const bad = output.find((o) => o.error || o.errorDetail);
        if (bad) return reject(new Error(`${what}: ${bad.error ?? bad.errorDetail?.message}`));
        resolve();
      },
    );
  });
}

/** Builds, imports and pushes any web:* tag the registry lacks. Returns the refs it pushed. */
export async function ensureImages(plan: LabPlan, docker: Docker, log: (s: string) => void): Promise<string[]> {
  const have = await registryTags(plan, WEB_REPO);
  const todo = WEB_VARIANTS.filter((v) => !have.includes(v));
  const pushed: string[] = [];
  for (const variant of todo) {
    const ref = imageRef(plan, variant);
    log(`building ${ref}`);
    const root = path.join(plan.imagesDir, variant, 'rootfs');
    const tar = path.join(plan.imagesDir, variant, 'rootfs.tar');
    await buildRootfs(root, variant);
    await runOk('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', tar, '.']);
    const importStream = await docker.importImage(tar, {
      repo: `${plan.registry.addr}/${WEB_REPO}`,
      tag: variant,
      changes: importChanges(variant),
      message: `berth lab web:${variant}`,
    });
    await follow(docker, importStream, `import ${ref}`);
    const pushStream = await docker
      .getImage(`${plan.registry.addr}/${WEB_REPO}`)
      .push({ tag: variant, authconfig: { serveraddress: plan.registry.addr } } as never);
    await follow(docker, pushStream as unknown as NodeJS.ReadableStream, `push ${ref}`);
    pushed.push(ref);
  }
  return pushed;
}
