/**
 * For integration tests: the running lab, read from the variables `berth lab env` exports.
 * A missing variable is a failure, not a skip: integration tests only run against a real lab
 * (test/run-all.sh brings it up and evals `berth lab env`).
 */
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { LAB_ENV_KEYS, type LabEnv } from '../../src/lab/env.js';
import { startNode as labStartNode, stopNode as labStopNode } from '../../src/lab/index.js';

export type WebTag = 'v1' | 'v2' | 'broken';

export interface TestLab {
  env: LabEnv;
  /** Manager's Docker socket path (from DOCKER_HOST). */
  dockerHost: string;
  etcdEndpoints: string[];
  registry: string;
  nginxUrl: string;
  /** Node addresses, node i (1-based) at index i-1. */
  nodes: string[];
  nodeSockets: string[];
  hostnames: string[];
  stateDir: string;
  /** Docker client on the manager (lab-1). */
  docker(): Docker;
  /** Docker client on node i (1-based). */
  nodeDocker(i: number): Docker;
  image(tag: WebTag): string;
  /** Stop node i's dockerd (1-based), keeping its data; the node goes Down in the swarm. */
  stopNode(i: number): Promise<void>;
  startNode(i: number): Promise<void>;
}

export function missingLabEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return LAB_ENV_KEYS.filter((k) => !env[k]);
}

const socketPath = (url: string) => url.replace(/^unix:\/\//, '');

export function requireLab(env: NodeJS.ProcessEnv = process.env): TestLab {
  const missing = missingLabEnv(env);
  if (missing.length > 0) {
    throw new Error(
      `integration tests need the lab; missing ${missing.join(', ')}.\n` +
        `Run them through \`npm test\` (it brings the lab up), or: node bin/berth.js lab up && eval "$(node bin/berth.js lab env)"`,
    );
  }
  const e = Object.fromEntries(LAB_ENV_KEYS.map((k) => [k, env[k]!])) as unknown as LabEnv;
  const nodeSockets = e.BERTH_LAB_NODE_SOCKETS.split(',').map(socketPath);
  const nodeAt = (i: number) => {
    const s = nodeSockets[i - 1];
    if (!s) throw new Error(`lab has nodes 1..${nodeSockets.length}, not ${i}`);
    return s;
  };
  return {
    env: e,
    dockerHost: socketPath(e.DOCKER_HOST),
    etcdEndpoints: e.BERTH_ETCD_ENDPOINTS.split(','),
    registry: e.BERTH_LAB_REGISTRY,
    nginxUrl: e.BERTH_LAB_NGINX_URL,
    nodes: e.BERTH_LAB_NODES.split(','),
    nodeSockets,
    hostnames: e.BERTH_LAB_NODE_HOSTNAMES.split(','),
    stateDir: e.BERTH_LAB_DIR,
    docker: () => new Docker({ socketPath: socketPath(e.DOCKER_HOST) }),
    nodeDocker: (i) => new Docker({ socketPath: nodeAt(i) }),
    image: (tag) => `${e.BERTH_LAB_REGISTRY}/web:${tag}`,
    stopNode: async (i) => {
      nodeAt(i);
      await labStopNode(i, { stateDir: e.BERTH_LAB_DIR });
    },
    startNode: async (i) => {
      nodeAt(i);
      await labStartNode(i, { stateDir: e.BERTH_LAB_DIR });
    },
  };
}

/** The pid of one of the lab's own processes (etcd, registry, dockerd-1, …), from its state file. */
export function labPid(lab: Pick<TestLab, 'stateDir'>, key: string): number {
  const state = JSON.parse(readFileSync(`${lab.stateDir}/state.json`, 'utf8')) as { processes: Record<string, { pid: number }> };
  const rec = state.processes[key];
  if (!rec) throw new Error(`no ${key} in the lab state`);
  return rec.pid;
}
