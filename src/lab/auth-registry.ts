/**
 * The lab's registry that needs credentials: a second docker-registry on the bridge address,
 * serving the lab registry's storage (read-only) over TLS with htpasswd auth (distribution sends
 * basic auth only under TLS). A lab CA signs its certificate; the nodes' dockerd trust that CA
 * through /etc/docker/certs.d/<host:port>/ca.crt, which dockerd reads on every pull (no restart).
 * No node is ever logged in: a node pulls from it only with the credentials Swarm hands over.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { LabPlan } from './plan.js';
import { runOk, spawnDaemon } from './exec.js';
import { httpGet } from './http.js';
import { storageConfigHead } from './registry.js';
import { recordAlive, tail } from './procs.js';
import { addOnce, type LabState } from './state.js';
import { waitFor } from './wait.js';

type Plan = Pick<LabPlan, 'registry' | 'authRegistry'>;

export function authRegistryConfig(plan: Plan): string {
  const a = plan.authRegistry;
  return [
    ...storageConfigHead(plan),
    // The plain registry owns the storage and writes it; this one only reads.
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    '    readonly:',
    '      enabled: true',
    'http:',
    `  addr: ${a.addr}`,
    '  tls:',
    `    certificate: ${a.cert}`,
    `    key: ${a.key}`,
    'auth:',
    '  htpasswd:',
    '    realm: berth-lab',
    `    path: ${a.htpasswd}`,
    '',
  ].join('\n');
}

export function authRegistryArgv(plan: Plan): string[] {
  return ['docker-registry', 'serve', plan.authRegistry.config];
}

/** A Docker config.json that logs in to the registry at `addr`. */
export function dockerConfigJson(addr: string, user: string, password: string): string {
  return JSON.stringify({ auths: { [addr]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }, null, 2) + '\n';
}

/** Up means it answers /v2/ over TLS (checked against the lab CA) with 401: it asks for credentials. */
export async function authRegistryUp(plan: Plan): Promise<boolean> {
  try {
    const ca = fs.readFileSync(plan.authRegistry.caCert);
    return (await httpGet(`https://${plan.authRegistry.addr}/v2/`, 2_000, {}, ca)).status === 401;
  } catch {
    return false;
  }
}

/** The lab CA and the server certificate for the bridge address, made once per state dir. */
async function ensureTls(plan: Plan): Promise<void> {
  const a = plan.authRegistry;
  if (fs.existsSync(a.cert) && fs.existsSync(a.key) && fs.existsSync(a.caCert)) return;
  const host = a.addr.replace(/:\d+$/, '');
  const ext = path.join(a.dir, 'server.ext');
  await runOk('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=berth lab CA', '-keyout', a.caKey, '-out', a.caCert]);
  await runOk('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${host}`, '-keyout', a.key, '-out', `${a.cert}.csr`]);
  fs.writeFileSync(ext, `subjectAltName=IP:${host}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  await runOk('openssl', ['x509', '-req', '-days', '825', '-in', `${a.cert}.csr`, '-CA', a.caCert, '-CAkey', a.caKey, '-CAcreateserial', '-extfile', ext, '-out', a.cert]);
}

/** The htpasswd (bcrypt, as distribution requires) and the config.json with the same password, made together. */
async function ensureCredentials(plan: Plan): Promise<void> {
  const a = plan.authRegistry;
  if (fs.existsSync(a.htpasswd) && fs.existsSync(a.authFile)) return;
  const password = randomBytes(12).toString('hex');
  fs.writeFileSync(a.htpasswd, await runOk('htpasswd', ['-Bbn', a.user, password]), { mode: 0o600 });
  fs.writeFileSync(a.authFile, dockerConfigJson(a.addr, a.user, password), { mode: 0o600 });
}

/** Puts the lab CA where every node's dockerd looks for it, recording what it made for `down`. */
function ensureDockerTrust(plan: Plan, state: LabState, save: () => void): void {
  const dir = path.dirname(plan.authRegistry.dockerCa);
  for (const d of [path.dirname(dir), dir]) {
    if (fs.existsSync(d)) continue;
    fs.mkdirSync(d);
    addOnce(state.dirs, d);
  }
  fs.copyFileSync(plan.authRegistry.caCert, plan.authRegistry.dockerCa);
  addOnce(state.files, plan.authRegistry.dockerCa);
  save();
}

export async function ensureAuthRegistry(plan: LabPlan, state: LabState, save: () => void): Promise<boolean> {
  const a = plan.authRegistry;
  if (recordAlive(state.processes.authRegistry)) return false;
  fs.mkdirSync(a.dir, { recursive: true });
  await ensureTls(plan);
  if (await authRegistryUp(plan)) throw new Error(`something else already answers on ${a.addr}`);
  await ensureCredentials(plan);
  ensureDockerTrust(plan, state, save);
  fs.writeFileSync(a.config, authRegistryConfig(plan));
  const argv = authRegistryArgv(plan);
  const pid = spawnDaemon(argv, a.log);
  state.processes.authRegistry = { pid, argv, log: a.log, marker: a.config, startedAt: new Date().toISOString() };
  save();
  await waitFor(
    `registry with auth at ${a.addr}`,
    async () => {
      if (!recordAlive(state.processes.authRegistry)) throw new Error(`docker-registry (auth) exited:\n${tail(a.log)}`);
      return authRegistryUp(plan);
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  return true;
}
