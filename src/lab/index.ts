/**
 * The lab's programmatic API: labUp, labDown, labStatus, readLabEnv, stopNode, startNode.
 * Everything that changes the machine runs under an exclusive flock and records what it made
 * in the state dir, so `down` removes exactly that.
 */
import fs from 'node:fs';
import { planLab, stateDirFromEnv, lockFileFromEnv, validateCounts, type LabPlan } from './plan.js';
import { addOnce, emptyState, readState, sameRule, writeState, type LabState } from './state.js';
import { withLabLock } from './lock.js';
import { ensurePackages, isRoot } from './packages.js';
import { ensureBridge, ensureNodeNet, ensureRule, forwardRule, linkExists, netnsExists, removeLink, removeNetns, removeRule, ruleExists } from './net.js';
import { ensureEtcd, etcdHealthy } from './etcd.js';
import { ensureRegistry, registryUp } from './registry.js';
import { authRegistryUp, ensureAuthRegistry } from './auth-registry.js';
import { dockerFor, dockerdKey, ensureDockerd, stopDockerd } from './dockerd.js';
import { ensureSwarm, swarmNodes } from './swarm.js';
import { ensureImages } from './images.js';
import { ensureNginx, nginxAnswers } from './nginx.js';
import { labShims, recordAlive, stopPid } from './procs.js';
import { removeStateDir } from './statedir.js';
import { labEnv, type LabEnv } from './env.js';

export { planLab, type LabPlan } from './plan.js';
export { labEnv, formatEnv, type LabEnv, LAB_ENV_KEYS } from './env.js';
export { imageRef } from './images.js';

export class LabUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabUsageError';
  }
}

export interface LabOptions {
  stateDir?: string;
  lockFile?: string;
  log?: (line: string) => void;
}

export interface UpOptions extends LabOptions {
  nodes?: number;
  managers?: number;
}

const noLog = () => {};
const dirOf = (o: LabOptions) => o.stateDir ?? stateDirFromEnv();
const lockOf = (o: LabOptions) => o.lockFile ?? lockFileFromEnv();

function planFromState(state: LabState): LabPlan {
  return planLab({ stateDir: state.stateDir, nodes: state.nodes, managers: state.managers });
}

/** Reads the recorded lab, or undefined when none is up in that state dir. */
export function readLab(stateDir?: string): { plan: LabPlan; state: LabState } | undefined {
  const dir = stateDir ?? stateDirFromEnv();
  const state = readState(planLab({ stateDir: dir, nodes: 1 }).stateFile);
  return state ? { plan: planFromState(state), state } : undefined;
}

export interface UpReport {
  changes: string[];
  plan: LabPlan;
  seconds: number;
}

/** Brings the lab up, or repairs it; a second call on a running lab changes nothing. */
export async function labUp(opts: UpOptions = {}): Promise<UpReport> {
  const log = opts.log ?? noLog;
  const t0 = Date.now();
  return withLabLock(lockOf(opts), async () => {
    const changes: string[] = [];
    if (!isRoot()) throw new Error('berth lab up needs root (network namespaces, a bridge, iptables, dockerd)');
    const installed = await ensurePackages(log);
    if (installed.length) changes.push(`installed ${installed.join(' ')}`);
    const dir = dirOf(opts);
    const existing = readLab(dir);
    if (existing) {
      const { state } = existing;
      if ((opts.nodes !== undefined && opts.nodes !== state.nodes) || (opts.managers !== undefined && opts.managers !== state.managers)) {
        throw new LabUsageError(
          `the lab in ${dir} is up with ${state.nodes} nodes and ${state.managers} managers; run \`berth lab down\` first to change that`,
        );
      }
    }
    const nodes = opts.nodes ?? existing?.state.nodes ?? 3;
    const managers = opts.managers ?? existing?.state.managers ?? 1;
    const problem = validateCounts(nodes, managers);
    if (problem) throw new LabUsageError(problem);
    const plan = planLab({ stateDir: dir, nodes, managers });
    fs.mkdirSync(plan.stateDir, { recursive: true });
    const state = existing?.state ?? emptyState(plan.stateDir, nodes, managers);
    const save = () => writeState(plan.stateFile, state);
    save();

    if (await ensureBridge(plan)) changes.push(`bridge ${plan.bridge}`);
    state.bridge = plan.bridge;
    save();
    const rule = forwardRule(plan.bridge);
    if (await ensureRule(rule)) changes.push(`iptables -I ${rule.join(' ')}`);
    addOnce(state.iptables, rule, sameRule);
    save();

    if (await ensureEtcd(plan, state, save)) changes.push('etcd');
    if (await ensureRegistry(plan, state, save)) changes.push('registry');
    if (await ensureAuthRegistry(plan, state, save)) changes.push('registry with auth');

    await Promise.all(
      plan.nodes.map(async (node) => {
        const net = await ensureNodeNet(plan, node);
        addOnce(state.netns, node.netns);
        addOnce(state.links, node.vethHost);
        save();
        if (net.createdNetns) changes.push(`netns ${node.netns}`);
        if (net.createdLink) changes.push(`veth ${node.vethHost}`);
        if (await ensureDockerd(plan, node, state, save)) changes.push(`dockerd ${node.hostname}`);
      }),
    );
    changes.push(...(await ensureSwarm(plan, log)));
    changes.push(...(await ensureImages(plan, dockerFor(plan.nodes[0]!, 120_000), log)));
    if (await ensureNginx(plan, state, save)) changes.push('nginx');
    return { changes, plan, seconds: (Date.now() - t0) / 1000 };
  });
}

export interface DownReport {
  removed: string[];
  stateDir: string;
}

/** Stops and removes exactly what the state record lists, then the state dir. Safe to repeat. */
export async function labDown(opts: LabOptions = {}): Promise<DownReport> {
  const log = opts.log ?? noLog;
  return withLabLock(lockOf(opts), async () => {
    const dir = dirOf(opts);
    const lab = readLab(dir);
    const removed: string[] = [];
    if (!lab) {
      if (fs.existsSync(dir)) {
        await removeStateDir(dir);
        removed.push(`state dir ${dir} (no state record)`);
      }
      return { removed, stateDir: dir };
    }
    const { plan, state } = lab;
    const save = () => writeState(plan.stateFile, state);
    const stopRecorded = async (key: string) => {
      const rec = state.processes[key];
      if (!rec) return;
      const how = await stopPid(rec.pid, rec.marker, key.startsWith('dockerd') ? 20_000 : 10_000);
      if (how !== 'gone') removed.push(`${key} pid ${rec.pid} (${how})`);
      delete state.processes[key];
      save();
    };
    log('stopping nginx, registries, etcd');
    for (const key of ['nginx', 'authRegistry', 'registry', 'etcd']) await stopRecorded(key);
    log('stopping dockerd nodes');
    const dockerds = Object.keys(state.processes).filter((k) => k.startsWith('dockerd-'));
    await Promise.all(dockerds.map(stopRecorded));
    for (const key of Object.keys(state.processes)) await stopRecorded(key);
    // Container shims outlive a containerd that died uncleanly; each names its containerd's
    // socket (-address …/exec/containerd/containerd.sock), so only shims of the lab's nodes match.
    for (const pid of labShims(plan)) {
      const how = await stopPid(pid, undefined, 5_000);
      if (how !== 'gone') removed.push(`leftover containerd-shim pid ${pid} (${how})`);
    }
    for (const ns of [...state.netns]) {
      await removeNetns(ns);
      removed.push(`netns ${ns}`);
      state.netns = state.netns.filter((x) => x !== ns);
      save();
    }
    for (const link of [...state.links]) {
      if (await linkExists(link)) {
        await removeLink(link);
        removed.push(`link ${link}`);
      }
      state.links = state.links.filter((x) => x !== link);
      save();
    }
    if (state.bridge) {
      if (await linkExists(state.bridge)) {
        await removeLink(state.bridge);
        removed.push(`bridge ${state.bridge}`);
      }
      state.bridge = undefined;
      save();
    }
    for (const rule of [...state.iptables]) {
      await removeRule(rule);
      removed.push(`iptables ${rule.join(' ')}`);
      state.iptables = state.iptables.filter((r) => !sameRule(r, rule));
      save();
    }
    for (const f of state.files) fs.rmSync(f, { force: true });
    for (const d of [...state.dirs].reverse()) {
      // Only when empty: something else may have put files there since.
      if (fs.existsSync(d) && fs.readdirSync(d).length === 0) fs.rmdirSync(d);
    }
    await removeStateDir(plan.stateDir);
    removed.push(`state dir ${plan.stateDir}`);
    return { removed, stateDir: plan.stateDir };
  });
}

export interface StatusRow {
  part: string;
  running: boolean;
  detail: string;
}

export async function labStatus(opts: LabOptions = {}): Promise<{ up: boolean; rows: StatusRow[] }> {
  const lab = readLab(dirOf(opts));
  if (!lab) return { up: false, rows: [] };
  const { plan, state } = lab;
  const pidOf = (k: string) => (state.processes[k] ? `pid ${state.processes[k]!.pid}` : 'no pid');
  const rows: StatusRow[] = [];
  rows.push({ part: `bridge ${plan.bridge}`, running: await linkExists(plan.bridge), detail: `${plan.hostIp}/${plan.prefixLen}` });
  for (const rule of state.iptables) rows.push({ part: 'iptables FORWARD', running: await ruleExists(rule), detail: rule.slice(1, 5).join(' ') });
  rows.push({ part: 'etcd', running: recordAlive(state.processes.etcd) && (await etcdHealthy(plan)), detail: `${pidOf('etcd')} ${plan.etcd.clientUrl}` });
  rows.push({ part: 'registry', running: recordAlive(state.processes.registry) && (await registryUp(plan)), detail: `${pidOf('registry')} ${plan.registry.addr}` });
  rows.push({ part: 'registry with auth', running: recordAlive(state.processes.authRegistry) && (await authRegistryUp(plan)), detail: `${pidOf('authRegistry')} ${plan.authRegistry.addr}` });
  rows.push({ part: 'nginx', running: recordAlive(state.processes.nginx) && (await nginxAnswers(plan)), detail: `${pidOf('nginx')} ${plan.nginx.listen}` });
  let swarm: Awaited<ReturnType<typeof swarmNodes>> = [];
  try {
    swarm = await swarmNodes(plan);
  } catch {
    /* manager down */
  }
  for (const node of plan.nodes) {
    const alive = recordAlive(state.processes[dockerdKey(node)]);
    const sn = swarm.find((n) => n.Description?.Hostname === node.hostname);
    const swarmState = sn ? `${sn.Spec.Role ?? '?'} ${sn.Status?.State ?? '?'} zone=${sn.Spec.Labels?.zone ?? '-'}` : 'not in swarm';
    rows.push({
      part: `node ${node.hostname}`,
      running: alive && netnsExists(node.netns) && sn?.Status?.State === 'ready',
      detail: `${pidOf(dockerdKey(node))} ${node.ip} netns ${node.netns} ${swarmState}`,
    });
  }
  return { up: true, rows };
}

/** The environment for the recorded lab; throws when no lab is up. */
export function readLabEnv(stateDir?: string): LabEnv {
  const lab = readLab(stateDir);
  if (!lab) throw new Error(`no lab is up in ${stateDir ?? stateDirFromEnv()}; run \`berth lab up\``);
  return labEnv(lab.plan);
}

/** Runs `fn` on node `index` (1-based) of the running lab, under the lab lock. */
async function withNode(index: number, opts: LabOptions, fn: (lab: { plan: LabPlan; state: LabState }, node: LabPlan['nodes'][number]) => Promise<unknown>): Promise<void> {
  await withLabLock(lockOf(opts), async () => {
    const lab = readLab(dirOf(opts));
    if (!lab) throw new Error('no lab is up');
    const node = lab.plan.nodes[index - 1];
    if (!node || !Number.isInteger(index)) throw new LabUsageError(`node must be 1..${lab.plan.nodes.length}, got ${index}`);
    await fn(lab, node);
  });
}

/** Stops node `index`'s dockerd (1-based), keeping its namespace and data, so it can come back. */
export async function stopNode(index: number, opts: LabOptions = {}): Promise<void> {
  await withNode(index, opts, (lab, node) => stopDockerd(node, lab.state, () => writeState(lab.plan.stateFile, lab.state)));
}

/** Starts node `index`'s dockerd again; it rejoins the swarm with its old identity. */
export async function startNode(index: number, opts: LabOptions = {}): Promise<void> {
  await withNode(index, opts, (lab, node) => ensureDockerd(lab.plan, node, lab.state, () => writeState(lab.plan.stateFile, lab.state)));
}
