/**
 * The Debian packages the lab needs. Installs what is missing when root on Debian; otherwise
 * says exactly what to install.
 */
import fs from 'node:fs';
import { run, runOk } from './exec.js';

export interface Requirement {
  pkg: string;
  /** Executables that show the package is there. */
  bins: string[];
}

export const REQUIREMENTS: Requirement[] = [
  { pkg: 'docker.io', bins: ['dockerd', 'containerd', 'runc'] },
  { pkg: 'etcd-server', bins: ['etcd'] },
  { pkg: 'etcd-client', bins: ['etcdctl'] },
  { pkg: 'nginx', bins: ['nginx'] },
  { pkg: 'docker-registry', bins: ['docker-registry'] },
  { pkg: 'busybox-static', bins: ['busybox'] },
  { pkg: 'iproute2', bins: ['ip'] },
  { pkg: 'iptables', bins: ['iptables'] },
  // The registry with auth: its lab CA and certificate, its bcrypt htpasswd.
  { pkg: 'openssl', bins: ['openssl'] },
  { pkg: 'apache2-utils', bins: ['htpasswd'] },
  // promtool checks deploy/prometheus/; the monitoring test runs Prometheus against berth.
  { pkg: 'prometheus', bins: ['prometheus', 'promtool'] },
];

const PATH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findBin(name: string, dirs: string[] = PATH_DIRS): string | undefined {
  for (const d of dirs) {
    const p = `${d}/${name}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** busybox-static specifically: the image needs a statically linked busybox. */
export const STATIC_BUSYBOX = '/bin/busybox';

export function missingPackages(has: (bin: string) => boolean = (b) => findBin(b) !== undefined): string[] {
  return REQUIREMENTS.filter((r) => !r.bins.every(has)).map((r) => r.pkg);
}

export function installCommand(pkgs: string[]): string {
  return `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${pkgs.join(' ')}`;
}

export function isDebian(): boolean {
  return fs.existsSync('/etc/debian_version') && findBin('apt-get') !== undefined;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

const POLICY_RC_D = '/usr/sbin/policy-rc.d';

/**
 * Installs missing packages. Services must not start on install (the lab starts its own): when
 * there is no policy-rc.d, a temporary one answering 101 is put in place and removed afterwards.
 * Returns the packages installed.
 */
export async function ensurePackages(log: (s: string) => void): Promise<string[]> {
  // busybox (dynamic, from the `busybox` package) may exist; the image needs the static one.
  const hasStaticBusybox = async () => {
    if (!fs.existsSync(STATIC_BUSYBOX)) return false;
    const r = await run('sh', ['-c', `LC_ALL=C ldd ${STATIC_BUSYBOX} 2>&1 || true`]);
    return /not a dynamic executable|statically linked/.test(r.stdout);
  };
  const missing = missingPackages();
  if (!missing.includes('busybox-static') && !(await hasStaticBusybox())) missing.push('busybox-static');
  if (missing.length === 0) return [];
  if (!isRoot() || !isDebian()) {
    throw new Error(
      `the lab needs these Debian packages, missing here: ${missing.join(', ')}\n` +
        `install them as root with:\n  ${installCommand(missing)}`,
    );
  }
  log(`installing ${missing.join(' ')} (apt-get)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let madePolicy = false;
  if (!fs.existsSync(POLICY_RC_D)) {
    fs.writeFileSync(POLICY_RC_D, '#!/bin/sh\n# written by berth lab while installing packages\nexit 101\n', { mode: 0o755 });
    madePolicy = true;
  }
  try {
    await runOk('apt-get', ['update'], { env, timeoutMs: 300_000 });
    await runOk('apt-get', ['install', '-y', ...missing], { env, timeoutMs: 900_000 });
  } finally {
    if (madePolicy) fs.rmSync(POLICY_RC_D, { force: true });
  }
  const still = missingPackages();
  if (still.length > 0) throw new Error(`apt-get install finished but these are still missing: ${still.join(', ')}`);
  return missing;
}
