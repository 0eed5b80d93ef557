/**
 * The host nginx that `berth proxy` drives: its own main config in the state dir (own pid file,
 * logs, temp paths, `daemon on`) including an upstreams file that starts empty. A default server
 * on the listen address answers 404 for any Host with no route.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabPlan } from './plan.js';
import { closeFdsArgv, run, runOk } from './exec.js';
import { readPidFile, recordAlive, tail } from './procs.js';
import type { LabState } from './state.js';
import { waitFor } from './wait.js';
import { httpGet } from './http.js';

type NginxPlan = Pick<LabPlan, 'nginx'>;

export function nginxMainConf(plan: NginxPlan): string {
  const n = plan.nginx;
  const t = (x: string) => path.join(n.tempDir, x);
  return `# berth lab nginx: main config. berth proxy writes ${n.upstreamsConf} (included below).
daemon on;
worker_processes 1;
pid ${n.pidFile};
error_log ${n.errorLog} warn;
events { worker_connections 1024; }
http {
  access_log ${n.accessLog};
  client_body_temp_path ${t('client_body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  server_names_hash_bucket_size 128;
  # Requests whose Host matches no route get 404.
  server {
    listen ${n.listen} default_server;
    location / { return 404 "berth lab: no route for this host\\n"; }
  }
  # Route server blocks must 'listen ${n.listen};' and set server_name to the upstream name.
  include ${n.upstreamsConf};
}
`;
}

/** Global flags that make nginx use only the lab's files (prefix, early error log, config). */
export function nginxBaseArgv(plan: NginxPlan): string[] {
  return ['nginx', '-p', plan.nginx.prefix, '-e', plan.nginx.errorLog, '-c', plan.nginx.mainConf];
}
export const nginxStartArgv = (plan: NginxPlan) => nginxBaseArgv(plan);
export const nginxReloadArgv = (plan: NginxPlan) => [...nginxBaseArgv(plan), '-s', 'reload'];
export const nginxCheckArgv = (plan: NginxPlan) => [...nginxBaseArgv(plan), '-t'];

export async function nginxAnswers(plan: LabPlan): Promise<boolean> {
  try {
    await httpGet(`http://${plan.nginx.listen}/`, 2_000);
    return true;
  } catch {
    return false;
  }
}

export async function ensureNginx(plan: LabPlan, state: LabState, save: () => void): Promise<boolean> {
  if (recordAlive(state.processes.nginx)) return false;
  const n = plan.nginx;
  fs.mkdirSync(n.tempDir, { recursive: true });
  fs.writeFileSync(n.mainConf, nginxMainConf(plan));
  if (!fs.existsSync(n.upstreamsConf)) fs.writeFileSync(n.upstreamsConf, '# written by berth proxy; empty until routes exist\n');
  if (await nginxAnswers(plan)) throw new Error(`something else already listens on ${n.listen}; the lab's nginx needs it`);
  const check = nginxCheckArgv(plan);
  await runOk(check[0]!, check.slice(1));
  fs.rmSync(n.pidFile, { force: true });
  const argv = nginxStartArgv(plan);
  // `daemon on`: the command forks the master and exits; the master's pid is in the pid file.
  const [cmd, ...args] = closeFdsArgv(argv) as [string, ...string[]];
  const r = await run(cmd, args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`nginx failed to start: ${r.stderr.trim()}\n${tail(n.errorLog)}`);
  const pid = await waitFor(`nginx pid file ${n.pidFile}`, () => readPidFile(n.pidFile), { timeoutMs: 10_000, intervalMs: 100 });
  state.processes.nginx = { pid, argv, log: n.errorLog, marker: n.mainConf, startedAt: new Date().toISOString() };
  save();
  await waitFor(`nginx on ${n.listen}`, () => nginxAnswers(plan), { timeoutMs: 10_000, intervalMs: 100 });
  return true;
}
