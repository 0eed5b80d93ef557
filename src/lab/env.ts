/** What `berth lab env` prints: the variables other commands and tests need to use the lab. Pure. */
import type { LabPlan } from './plan.js';
import { nginxCheckArgv, nginxReloadArgv } from './nginx.js';
import { shellQuote } from './exec.js';

export interface LabEnv {
  DOCKER_HOST: string;
  BERTH_ETCD_ENDPOINTS: string;
  BERTH_LAB_ETCD_FROM_NODES: string;
  BERTH_LAB_REGISTRY: string;
  /** The registry that needs credentials (TLS by the lab CA, htpasswd), serving the same images. */
  BERTH_LAB_AUTH_REGISTRY: string;
  /** A Docker config.json logged in to it: what `--registry-auth-file` takes. */
  BERTH_LAB_AUTH_REGISTRY_CONFIG: string;
  /** The lab CA (PEM) its certificate is signed by: NODE_EXTRA_CA_CERTS for a berth that talks to it. */
  BERTH_LAB_AUTH_REGISTRY_CA: string;
  BERTH_LAB_NGINX_URL: string;
  BERTH_NGINX_CONF: string;
  BERTH_NGINX_MAIN_CONF: string;
  BERTH_NGINX_RELOAD_CMD: string;
  BERTH_NGINX_CHECK_CMD: string;
  BERTH_NGINX_LISTEN: string;
  BERTH_NGINX_PID_FILE: string;
  BERTH_LAB_NODES: string;
  BERTH_LAB_NODE_SOCKETS: string;
  BERTH_LAB_NODE_HOSTNAMES: string;
  BERTH_LAB_DIR: string;
  /** The lab registry speaks plain http, as every lab dockerd's --insecure-registry says. */
  BERTH_INSECURE_REGISTRIES: string;
}

export const LAB_ENV_KEYS: (keyof LabEnv)[] = [
  'DOCKER_HOST',
  'BERTH_ETCD_ENDPOINTS',
  'BERTH_LAB_ETCD_FROM_NODES',
  'BERTH_LAB_REGISTRY',
  'BERTH_LAB_AUTH_REGISTRY',
  'BERTH_LAB_AUTH_REGISTRY_CONFIG',
  'BERTH_LAB_AUTH_REGISTRY_CA',
  'BERTH_LAB_NGINX_URL',
  'BERTH_NGINX_CONF',
  'BERTH_NGINX_MAIN_CONF',
  'BERTH_NGINX_RELOAD_CMD',
  'BERTH_NGINX_CHECK_CMD',
  'BERTH_NGINX_LISTEN',
  'BERTH_NGINX_PID_FILE',
  'BERTH_LAB_NODES',
  'BERTH_LAB_NODE_SOCKETS',
  'BERTH_LAB_NODE_HOSTNAMES',
  'BERTH_LAB_DIR',
  'BERTH_INSECURE_REGISTRIES',
];

export function labEnv(plan: LabPlan): LabEnv {
  const cmd = (argv: string[]) => argv.map(shellQuote).join(' ');
  return {
    DOCKER_HOST: `unix://${plan.nodes[0]!.socket}`,
    BERTH_ETCD_ENDPOINTS: plan.etcd.clientUrl,
    BERTH_LAB_ETCD_FROM_NODES: plan.etcd.nodesUrl,
    BERTH_LAB_REGISTRY: plan.registry.addr,
    BERTH_LAB_AUTH_REGISTRY: plan.authRegistry.addr,
    BERTH_LAB_AUTH_REGISTRY_CONFIG: plan.authRegistry.authFile,
    BERTH_LAB_AUTH_REGISTRY_CA: plan.authRegistry.caCert,
    BERTH_LAB_NGINX_URL: `http://${plan.nginx.listen}`,
    BERTH_NGINX_CONF: plan.nginx.upstreamsConf,
    BERTH_NGINX_MAIN_CONF: plan.nginx.mainConf,
    BERTH_NGINX_RELOAD_CMD: cmd(nginxReloadArgv(plan)),
    BERTH_NGINX_CHECK_CMD: cmd(nginxCheckArgv(plan)),
    BERTH_NGINX_LISTEN: plan.nginx.listen,
    BERTH_NGINX_PID_FILE: plan.nginx.pidFile,
    BERTH_LAB_NODES: plan.nodes.map((n) => n.ip).join(','),
    BERTH_LAB_NODE_SOCKETS: plan.nodes.map((n) => `unix://${n.socket}`).join(','),
    BERTH_LAB_NODE_HOSTNAMES: plan.nodes.map((n) => n.hostname).join(','),
    BERTH_LAB_DIR: plan.stateDir,
    BERTH_INSECURE_REGISTRIES: plan.registry.addr,
  };
}

export function formatEnv(env: LabEnv): string {
  return LAB_ENV_KEYS.map((k) => `export ${k}=${shellQuote(env[k])}`).join('\n') + '\n';
}
