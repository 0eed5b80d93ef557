/**
 * After `berth lab down`: checks that nothing the lab recorded is left. Usage:
 *   node --import tsx test/support/verify-lab-clean.ts SNAPSHOT_OF_state.json
 * Exits 1 listing every leftover (live recorded pid, netns, link, bridge, iptables rule, mount,
 * state dir, a daemon process (dockerd, containerd, shim, etcd, nginx, registry) naming the state dir).
 */
import fs from 'node:fs';
import { parseState } from '../../src/lab/state.js';
import { isAlive } from '../../src/lab/procs.js';
import { linkExists, netnsExists, ruleExists } from '../../src/lab/net.js';
import { mountsUnder } from '../../src/lab/statedir.js';
import { labDaemonsReferencing } from '../../src/lab/procs.js';

const file = process.argv[2];
if (!file) {
  console.error('usage: verify-lab-clean.ts STATE_SNAPSHOT');
  process.exit(2);
}
const state = parseState(fs.readFileSync(file, 'utf8'), file);
const left: string[] = [];
for (const [k, p] of Object.entries(state.processes)) if (isAlive(p.pid, p.marker)) left.push(`process ${k} pid ${p.pid} alive`);
for (const ns of state.netns) if (netnsExists(ns)) left.push(`netns ${ns}`);
for (const l of state.links) if (await linkExists(l)) left.push(`link ${l}`);
if (state.bridge && (await linkExists(state.bridge))) left.push(`bridge ${state.bridge}`);
for (const r of state.iptables) if (await ruleExists(r)) left.push(`iptables ${r.join(' ')}`);
for (const m of mountsUnder(fs.readFileSync('/proc/self/mountinfo', 'utf8'), state.stateDir)) left.push(`mount ${m}`);
for (const pid of labDaemonsReferencing(state.stateDir)) left.push(`daemon process ${pid} references ${state.stateDir}`);
for (const f of [...state.files, ...state.dirs]) if (fs.existsSync(f)) left.push(`${f} (made by the lab outside its state dir)`);
if (fs.existsSync(state.stateDir)) left.push(`state dir ${state.stateDir}`);
if (left.length > 0) {
  console.error(`lab down left ${left.length} things behind:\n  ${left.join('\n  ')}`);
  process.exit(1);
}
console.error(`lab down left nothing behind (${Object.keys(state.processes).length} pids, ${state.netns.length} netns, ${state.links.length} veths, bridge, ${state.iptables.length} iptables rules checked)`);
