/**
 * The lab network: one bridge on the host, one network namespace per node joined by a veth pair,
 * and the iptables FORWARD accept rule for bridge traffic. Argv builders are pure (unit tested);
 * the ensure/remove functions apply them and are idempotent.
 */
import fs from 'node:fs';
import type { LabPlan, NodePlan } from './plan.js';
import { run, runOk } from './exec.js';

export function bridgeArgvs(plan: Pick<LabPlan, 'bridge' | 'hostIp' | 'prefixLen'>): string[][] {
  return [
    ['ip', 'link', 'add', plan.bridge, 'type', 'bridge'],
    ['ip', 'addr', 'add', `${plan.hostIp}/${plan.prefixLen}`, 'dev', plan.bridge],
    ['ip', 'link', 'set', plan.bridge, 'up'],
  ];
}

export function nodeNetArgvs(plan: Pick<LabPlan, 'bridge' | 'prefixLen'>, node: NodePlan): string[][] {
  return [
    ['ip', 'netns', 'add', node.netns],
    ['ip', 'link', 'add', node.vethHost, 'type', 'veth', 'peer', 'name', node.vethNode],
    ['ip', 'link', 'set', node.vethNode, 'netns', node.netns],
    ['ip', '-n', node.netns, 'addr', 'add', `${node.ip}/${plan.prefixLen}`, 'dev', node.vethNode],
    ['ip', '-n', node.netns, 'link', 'set', node.vethNode, 'up'],
    ['ip', '-n', node.netns, 'link', 'set', 'lo', 'up'],
    ['ip', 'link', 'set', node.vethHost, 'master', plan.bridge],
    ['ip', 'link', 'set', node.vethHost, 'up'],
  ];
}

/** The FORWARD rule spec (without -I/-C/-D) that lets nodes talk over the bridge. */
export function forwardRule(bridge: string): string[] {
  return ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT', '-m', 'comment', '--comment', 'berth-lab'];
}

export function netnsPath(name: string): string {
  return `/var/run/netns/${name}`;
}

export async function linkExists(name: string): Promise<boolean> {
  return (await run('ip', ['link', 'show', 'dev', name])).code === 0;
}

export function netnsExists(name: string): boolean {
  return fs.existsSync(netnsPath(name));
}

async function sh(argv: string[]): Promise<void> {
  const [cmd, ...args] = argv;
  await runOk(cmd!, args, { timeoutMs: 30_000 });
}

/** Creates the bridge if missing. Returns true when it created it. */
export async function ensureBridge(plan: LabPlan): Promise<boolean> {
  if (await linkExists(plan.bridge)) {
    const addr = await runOk('ip', ['-o', '-4', 'addr', 'show', 'dev', plan.bridge]);
    if (!addr.includes(`${plan.hostIp}/${plan.prefixLen}`)) await sh(bridgeArgvs(plan)[1]!);
    await sh(bridgeArgvs(plan)[2]!);
    return false;
  }
  for (const argv of bridgeArgvs(plan)) await sh(argv);
  return true;
}

/** Creates the node's namespace and veth if missing (repairs a namespace without its link). */
export async function ensureNodeNet(plan: LabPlan, node: NodePlan): Promise<{ createdNetns: boolean; createdLink: boolean }> {
  const argvs = nodeNetArgvs(plan, node);
  let createdNetns = false;
  let createdLink = false;
  if (!netnsExists(node.netns)) {
    await sh(argvs[0]!);
    createdNetns = true;
  }
  const inside = (await run('ip', ['-n', node.netns, 'link', 'show', 'dev', node.vethNode])).code === 0;
  if (!inside) {
    if (await linkExists(node.vethHost)) await sh(['ip', 'link', 'del', node.vethHost]);
    for (const argv of argvs.slice(1, 3)) await sh(argv);
    createdLink = true;
  }
  const addrs = await runOk('ip', ['-n', node.netns, '-o', '-4', 'addr', 'show', 'dev', node.vethNode]);
  if (!addrs.includes(`${node.ip}/`)) await sh(argvs[3]!);
  for (const argv of argvs.slice(4)) await sh(argv);
  return { createdNetns, createdLink };
}

export async function ruleExists(rule: string[]): Promise<boolean> {
  return (await run('iptables', ['-w', '5', '-C', ...rule])).code === 0;
}

/** Inserts the rule if it is not there. Returns true when it inserted it. */
export async function ensureRule(rule: string[]): Promise<boolean> {
  if (await ruleExists(rule)) return false;
  await runOk('iptables', ['-w', '5', '-I', ...rule]);
  return true;
}

export async function removeRule(rule: string[]): Promise<void> {
  for (let i = 0; i < 10 && (await ruleExists(rule)); i++) await runOk('iptables', ['-w', '5', '-D', ...rule]);
}

export async function removeNetns(name: string): Promise<void> {
  if (netnsExists(name)) await runOk('ip', ['netns', 'del', name]);
}

export async function removeLink(name: string): Promise<void> {
  if (await linkExists(name)) await runOk('ip', ['link', 'del', name]);
}
