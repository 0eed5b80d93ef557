/**
 * The lab's address plan: every name, address, port and path the lab uses, derived from the
 * state directory and the node counts. Pure; nothing here touches the machine.
 */
import path from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/berth-lab';
export const DEFAULT_LOCK_FILE = '/tmp/berth-lab.lock';
export const BRIDGE = 'berth0';
export const SUBNET_PREFIX = '10.77.0';
export const PREFIX_LEN = 24;
export const HOST_IP = `${SUBNET_PREFIX}.1`;
export const REGISTRY_ADDR = `${HOST_IP}:5000`;
/** The same images behind TLS and htpasswd: the registry a node pulls from only with credentials. */
export const AUTH_REGISTRY_ADDR = `${HOST_IP}:5443`;
export const AUTH_REGISTRY_USER = 'berth-lab';
/** Where every dockerd (20.10, not rootless) looks for a registry's CA: one directory per host:port. */
export const DOCKER_CERTS_DIR = '/etc/docker/certs.d';
export const ETCD_CLIENT_URL = 'http://127.0.0.1:2379';
/** The same etcd on the bridge address: what containers on the lab's nodes reach (BERTH_LAB_ETCD_FROM_NODES). */
export const ETCD_NODES_URL = `http://${HOST_IP}:2379`;
export const ETCD_PEER_URL = 'http://127.0.0.1:2380';
export const NGINX_LISTEN = '127.0.0.1:8080';
export const MAX_NODES = 20;
export const ZONES = ['a', 'b', 'c'] as const;

export type NodeRole = 'manager' | 'worker';

export interface NodePlan {
  /** 1-based. */
  index: number;
  hostname: string;
  netns: string;
  /** Host end of the veth pair (on the bridge). */
  vethHost: string;
  /** Node end of the veth pair, inside the namespace. */
  vethNode: string;
  ip: string;
  zone: string;
  role: NodeRole;
  dir: string;
  dataRoot: string;
  execRoot: string;
  socket: string;
  pidfile: string;
  configFile: string;
  log: string;
}

export interface LabPlan {
  stateDir: string;
  stateFile: string;
  nodeCount: number;
  managers: number;
  bridge: string;
  hostIp: string;
  prefixLen: number;
  nodes: NodePlan[];
  etcd: { dataDir: string; log: string; clientUrl: string; nodesUrl: string; peerUrl: string };
  registry: { addr: string; config: string; storage: string; log: string };
  authRegistry: {
    addr: string;
    /** Its config, TLS files, htpasswd and the Docker config.json that logs in to it. */
    dir: string;
    config: string;
    log: string;
    caCert: string;
    caKey: string;
    cert: string;
    key: string;
    htpasswd: string;
    user: string;
    /** A Docker config.json with the lab user's credentials (`auths`), for `--registry-auth-file`. */
    authFile: string;
    /** The CA's copy the nodes' dockerd read (certs.d/<host:port>/ca.crt). */
    dockerCa: string;
  };
  nginx: {
    prefix: string;
    mainConf: string;
    upstreamsConf: string;
    pidFile: string;
    errorLog: string;
    accessLog: string;
    tempDir: string;
    listen: string;
  };
  imagesDir: string;
}

export interface PlanOptions {
  stateDir?: string;
  nodes?: number;
  managers?: number;
}

export function validateCounts(nodes: number, managers: number): string | undefined {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) return `--nodes must be an integer from 1 to ${MAX_NODES}, got ${nodes}`;
  if (!Number.isInteger(managers) || managers < 1 || managers > nodes) return `--managers must be an integer from 1 to --nodes (${nodes}), got ${managers}`;
  return undefined;
}

export function zoneFor(index: number): string {
  return ZONES[(index - 1) % ZONES.length]!;
}

export function nodeIp(index: number): string {
  return `${SUBNET_PREFIX}.${10 + index}`;
}

export function planLab(opts: PlanOptions = {}): LabPlan {
  const stateDir = path.resolve(opts.stateDir ?? DEFAULT_STATE_DIR);
  const nodeCount = opts.nodes ?? 3;
  const managers = opts.managers ?? 1;
  const problem = validateCounts(nodeCount, managers);
  if (problem) throw new RangeError(problem);
  const nodes: NodePlan[] = [];
  for (let i = 1; i <= nodeCount; i++) {
    const dir = path.join(stateDir, 'nodes', `lab-${i}`);
    nodes.push({
      index: i,
      hostname: `lab-${i}`,
      netns: `berth-lab-${i}`,
      vethHost: `bveth${i}`,
      vethNode: `bveth${i}n`,
      ip: nodeIp(i),
      zone: zoneFor(i),
      role: i <= managers ? 'manager' : 'worker',
      dir,
      dataRoot: path.join(dir, 'root'),
      execRoot: path.join(dir, 'exec'),
      socket: path.join(dir, 'docker.sock'),
      pidfile: path.join(dir, 'docker.pid'),
      configFile: path.join(dir, 'daemon.json'),
      log: path.join(dir, 'dockerd.log'),
    });
  }
  const ng = path.join(stateDir, 'nginx');
  const ar = path.join(stateDir, 'auth-registry');
  return {
    stateDir,
    stateFile: path.join(stateDir, 'state.json'),
    nodeCount,
    managers,
    bridge: BRIDGE,
    hostIp: HOST_IP,
    prefixLen: PREFIX_LEN,
    nodes,
    etcd: {
      dataDir: path.join(stateDir, 'etcd', 'data'),
      log: path.join(stateDir, 'etcd', 'etcd.log'),
      clientUrl: ETCD_CLIENT_URL,
      nodesUrl: ETCD_NODES_URL,
      peerUrl: ETCD_PEER_URL,
    },
    registry: {
      addr: REGISTRY_ADDR,
      config: path.join(stateDir, 'registry', 'config.yml'),
      storage: path.join(stateDir, 'registry', 'data'),
      log: path.join(stateDir, 'registry', 'registry.log'),
    },
    authRegistry: {
      addr: AUTH_REGISTRY_ADDR,
      dir: ar,
      config: path.join(ar, 'config.yml'),
      log: path.join(ar, 'registry.log'),
      caCert: path.join(ar, 'ca.crt'),
      caKey: path.join(ar, 'ca.key'),
      cert: path.join(ar, 'server.crt'),
      key: path.join(ar, 'server.key'),
      htpasswd: path.join(ar, 'htpasswd'),
      user: AUTH_REGISTRY_USER,
      authFile: path.join(ar, 'docker-config.json'),
      dockerCa: path.join(DOCKER_CERTS_DIR, AUTH_REGISTRY_ADDR, 'ca.crt'),
    },
    nginx: {
      prefix: ng + '/',
      mainConf: path.join(ng, 'nginx.conf'),
      upstreamsConf: path.join(ng, 'upstreams.conf'),
      pidFile: path.join(ng, 'nginx.pid'),
      errorLog: path.join(ng, 'error.log'),
      accessLog: path.join(ng, 'access.log'),
      tempDir: path.join(ng, 'tmp'),
      listen: NGINX_LISTEN,
    },
    imagesDir: path.join(stateDir, 'images'),
  };
}

export function stateDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.BERTH_LAB_DIR && env.BERTH_LAB_DIR.length > 0 ? env.BERTH_LAB_DIR : DEFAULT_STATE_DIR;
}

export function lockFileFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.BERTH_LAB_LOCK && env.BERTH_LAB_LOCK.length > 0 ? env.BERTH_LAB_LOCK : DEFAULT_LOCK_FILE;
}
