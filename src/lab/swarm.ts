/**
 * Swarm formation through the Docker API: init on node 1, the others join (nodes 1..M as
 * managers), then every node gets `pool=lab` and its `zone` label, and all must be Ready.
 */
import type Docker from 'dockerode';
import type { LabPlan, NodePlan } from './plan.js';
import { dockerFor } from './dockerd.js';
import { waitFor } from './wait.js';

export const SWARM_PORT = 2377;

export function labNodeLabels(node: Pick<NodePlan, 'zone'>): Record<string, string> {
  return { pool: 'lab', zone: node.zone };
}

async function localState(docker: Docker): Promise<string> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string } };
  return info.Swarm?.LocalNodeState ?? 'inactive';
}

interface SwarmNode {
  ID: string;
  Version: { Index: number };
  Spec: { Labels?: Record<string, string>; Role?: string; Availability?: string; Name?: string };
  Description?: { Hostname?: string };
  Status?: { State?: string; Addr?: string };
}

/** Forms the swarm (idempotent). Returns a description of what it changed. */
export async function ensureSwarm(plan: LabPlan, log: (s: string) => void): Promise<string[]> {
  const changes: string[] = [];
  const first = plan.nodes[0]!;
  const mgr = dockerFor(first);
  const firstState = await localState(mgr);
  if (firstState === 'inactive') {
    log(`swarm init on ${first.hostname}`);
    await mgr.swarmInit({ ListenAddr: `${first.ip}:${SWARM_PORT}`, AdvertiseAddr: `${first.ip}:${SWARM_PORT}` });
    changes.push(`swarm init ${first.hostname}`);
  } else if (firstState !== 'active') {
    await waitFor(`${first.hostname} swarm state active (is ${firstState})`, async () => (await localState(mgr)) === 'active', { timeoutMs: 60_000, intervalMs: 500 });
  }
  const swarm = (await mgr.swarmInspect()) as { JoinTokens: { Worker: string; Manager: string } };
  for (const node of plan.nodes.slice(1)) {
    const docker = dockerFor(node);
    const st = await localState(docker);
    if (st === 'active' || st === 'pending') continue;
    if (st !== 'inactive') throw new Error(`${node.hostname}: unexpected swarm state ${st}; run \`berth lab down\` and up again`);
    log(`swarm join ${node.hostname} as ${node.role}`);
    await docker.swarmJoin({
      ListenAddr: `${node.ip}:${SWARM_PORT}`,
      AdvertiseAddr: `${node.ip}:${SWARM_PORT}`,
      RemoteAddrs: [`${first.ip}:${SWARM_PORT}`],
      JoinToken: node.role === 'manager' ? swarm.JoinTokens.Manager : swarm.JoinTokens.Worker,
    });
    changes.push(`swarm join ${node.hostname}`);
  }
  // Every node Ready, then labels.
  const nodes = await waitFor(
    `${plan.nodes.length} Ready swarm nodes`,
    async () => {
      const list = (await mgr.listNodes()) as SwarmNode[];
      const ready = plan.nodes.map((p) => list.find((n) => n.Description?.Hostname === p.hostname && n.Status?.State === 'ready'));
      return ready.every((n) => n !== undefined) ? (ready as SwarmNode[]) : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
  for (const [i, n] of nodes.entries()) {
    const p = plan.nodes[i]!;
    const want = labNodeLabels(p);
    const labels = n.Spec.Labels ?? {};
    if (Object.entries(want).every(([k, v]) => labels[k] === v)) continue;
    await mgr.getNode(n.ID).update({ version: n.Version.Index, ...n.Spec, Labels: { ...labels, ...want } } as never);
    changes.push(`label ${p.hostname} pool=lab zone=${p.zone}`);
  }
  return changes;
}

/** Swarm view from node 1: hostname → state, role, labels. */
export async function swarmNodes(plan: LabPlan): Promise<SwarmNode[]> {
  return (await dockerFor(plan.nodes[0]!, 5_000).listNodes()) as SwarmNode[];
}
