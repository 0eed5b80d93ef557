/**
 * For the jobs integration tests: a controller process of their own, the Swarm's view of an
 * environment's job runs, and a clean slate (run under `flock /tmp/berth-lab-tests.lock`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { parseResource } from '../../src/api/resource.js';
import type { Environment, EnvironmentGroup, EnvironmentStatus, JobStatus } from '../../src/api/index.js';
import { createClient } from '../../src/store/client.js';
import { clearJobRequests } from '../../src/store/job-requests.js';
import { ResourceStore } from '../../src/store/resources.js';
import { StatusStore } from '../../src/store/status.js';
import { requireLab } from './lab.js';
import { metricTotal, scrapeMetrics } from './prom-text.js';
import { releaseClaims } from './claims.js';

export const lab = requireLab();
export const etcd = createClient({ endpoints: lab.etcdEndpoints, prefix: '/berth', callTimeoutMs: 3_000 });
export const store = new ResourceStore(etcd);
export const statuses = new StatusStore(etcd);
export const docker = lab.docker();

export interface ControllerProcess {
  child: ChildProcess;
  port: number;
}

let nextPort = 19500 + (process.pid % 200);

/** `berth controller` from the sources, logging to `log`. */
export function startController(log: string): ControllerProcess {
  const out = openSync(log, 'a');
  const port = nextPort++;
  const code = "import('./src/cli/main.ts').then(async (m) => { process.exitCode = await m.main(['node', 'berth', ...process.argv.slice(1)]); })";
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code, 'controller', '--metrics-addr', `127.0.0.1:${port}`, '--resync', '10s'], { env: process.env, stdio: ['ignore', out, out] });
  return { child, port };
}

export const alive = (c: ControllerProcess) => c.child.exitCode === null && c.child.signalCode === null;

export async function stopController(c: ControllerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!alive(c)) return;
  const gone = new Promise((r) => c.child.once('exit', r));
  c.child.kill(signal);
  const t = setTimeout(() => c.child.kill('SIGKILL'), 40_000);
  await gone;
  clearTimeout(t);
}

/** The sum of a metric's series whose labels contain `filter` (like `job="tick"`). */
export async function metric(c: ControllerProcess, name: string, ...filters: string[]): Promise<number> {
  const m = await scrapeMetrics(`http://127.0.0.1:${c.port}/metrics`);
  let total = 0;
  for (const [k, v] of m) if ((k === name || k.startsWith(`${name}{`)) && filters.every((f) => k.includes(f))) total += v;
  return filters.length === 0 ? metricTotal(m, name) : total;
}

export { sleep, until } from './poll.js';

export function group(name: string): EnvironmentGroup {
  return parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name }, spec: { nodeSelector: { pool: 'lab' } } }) as EnvironmentGroup;
}

export function jobsOnlyEnv(name: string, groupName: string, jobs: Record<string, Record<string, unknown>>): Environment {
  return parseResource({ apiVersion: 'berth.dev/v1alpha1', kind: 'Environment', metadata: { name }, spec: { group: groupName, nodes: 1, services: {}, jobs } }) as Environment;
}

export async function jobStatus(env: string, job: string): Promise<JobStatus | undefined> {
  return ((await statuses.getStatus('Environment', env)) as EnvironmentStatus | undefined)?.jobs?.[job];
}

export interface RunService {
  id: string;
  name: string;
  createdAt: string;
  labels: Record<string, string>;
  spec: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** The job run services of `env` in the Swarm, as Docker reports them. */
export async function runServices(env: string, job?: string): Promise<RunService[]> {
  const list = (await docker.listServices({ filters: { label: [`berth.env=${env}`] } } as never)) as unknown as Array<{ ID: string; CreatedAt: string; Spec: { Name: string; Labels?: Record<string, string> } }>;
  return list
    .filter((s) => s.Spec.Labels?.['berth.job'] !== undefined && (job === undefined || s.Spec.Labels['berth.job'] === job))
    .map((s) => ({ id: s.ID, name: s.Spec.Name, createdAt: s.CreatedAt, labels: s.Spec.Labels ?? {}, spec: s.Spec }));
}

/** Docker's tasks of the given services (every state). */
export async function tasksOf(serviceIds: string[]): Promise<Array<{ ServiceID: string; Status: { State: string; ContainerStatus?: { ExitCode?: number } } }>> {
  if (serviceIds.length === 0) return [];
  return (await docker.listTasks({ filters: { service: serviceIds } } as never)) as never;
}

/** Removes what an earlier run of these tests may have left: environments, services, claims, statuses. */
export async function cleanSlate(prefix: string, envs: string[], groupName: string): Promise<void> {
  for (const e of envs) await store.delete('Environment', e).catch(() => undefined);
  for (const s of (await docker.listServices()) as Array<{ ID: string; Spec: { Name: string } }>) {
    if (s.Spec.Name.startsWith(prefix)) await docker.getService(s.ID).remove().catch(() => undefined);
  }
  await releaseClaims(docker, (env) => env.startsWith(prefix));
  for (const e of envs) await statuses.deleteStatus('Environment', e).catch(() => undefined);
  for (const e of envs) await clearJobRequests(etcd, e).catch(() => undefined);
  await store.delete('EnvironmentGroup', groupName, { force: true }).catch(() => undefined);
  await statuses.deleteStatus('EnvironmentGroup', groupName).catch(() => undefined);
}
