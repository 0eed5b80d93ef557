/**
 * The base the tests build berth's image on, made without Docker Hub: Debian 12 (mmdebstrap,
 * minbase) with nginx from Debian's packages and this host's node copied in (the production
 * node_modules that scripts/image.sh copies in were built for it). The root filesystem is cached
 * on disk and the imported image kept on the daemon, so only the first run pays (about 50 s).
 */
import fs from 'node:fs';
import path from 'node:path';
import { run, runOk } from '../../src/lab/exec.js';

const CACHE_DIR = process.env.BERTH_TEST_CACHE ?? '/var/cache/berth-test';

export function baseImageTag(nodeVersion = process.version): string {
  return `berth-base:bookworm-nginx-node${nodeVersion.replace(/^v/, '')}`;
}

/** Makes `baseImageTag()` exist on the daemon at DOCKER_HOST (`env`); returns the tag. */
export async function ensureBaseImage(env: NodeJS.ProcessEnv, log: (s: string) => void = () => {}): Promise<string> {
  const tag = baseImageTag();
  if ((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', tag], { env })).code === 0) return tag;
  if (!/^v20\./.test(process.version)) throw new Error(`the test base copies this host's node, which must be 20.x, not ${process.version}`);
  const tar = path.join(CACHE_DIR, `${tag.replace(/[:/]/g, '_')}.tar`);
  if (!fs.existsSync(tar)) {
    log(`building ${tar} with mmdebstrap`);
    await ensureMmdebstrap();
    fs.mkdirSync(CACHE_DIR, { recursive: true });
    // mmdebstrap picks the output format from the name's extension.
    const partial = tar.replace(/\.tar$/, '.partial.tar');
    await runOk(
      'mmdebstrap',
      [
        '--variant=minbase',
        '--include=nginx',
        '--dpkgopt=path-exclude=/usr/share/doc/*',
        '--dpkgopt=path-exclude=/usr/share/man/*',
        '--dpkgopt=path-exclude=/usr/share/locale/*',
        `--customize-hook=copy-in ${process.execPath} /usr/local/bin`,
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/*',
        'bookworm',
        partial,
      ],
      { timeoutMs: 600_000 },
    );
    fs.renameSync(partial, tar);
  }
  log(`importing ${tag}`);
  await runOk(
    'docker',
    ['import', '-c', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '-c', 'CMD ["/bin/bash"]', tar, tag],
    { env, timeoutMs: 300_000 },
  );
  return tag;
}

async function ensureMmdebstrap(): Promise<void> {
  if ((await run('sh', ['-c', 'command -v mmdebstrap'])).code === 0) return;
  await runOk('apt-get', ['install', '-y', 'mmdebstrap'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 300_000 });
}
