import type { Command } from 'commander';
import { formatAge, NotFoundError, routePort, routeUpstream, type Environment, type EnvironmentStatus } from '../api/index.js';
import { scheduleText } from '../reconcile/jobs/decide.js';
import { ResourceStore } from '../store/resources.js';
import { StatusStore } from '../store/status.js';
import { formatTable } from './output.js';
import { kindFromArg } from './resource-types.js';
import { runAction, UsageError } from './run.js';
import { addStoreOptions, withClient, type StoreFlags } from './store-options.js';

const indent = (text: string, n = 2) => text.split('\n').filter((l) => l.length > 0).map((l) => ' '.repeat(n) + l).join('\n');
const kv = (obj: Record<string, string> | undefined) => (obj && Object.keys(obj).length > 0 ? Object.entries(obj).map(([k, v]) => `${k}=${v}`).join(', ') : '<none>');

/** Running tasks on each held node (0 included), then on any other node: `lab-1 3, lab-2 3, lab-3 0`. */
function perNode(counts: Record<string, number>, held: string[]): string {
  const hosts = [...new Set([...held, ...Object.keys(counts)])].sort();
  return hosts.map((h) => `${h} ${counts[h] ?? 0}`).join(', ') || '<none>';
}

/** kubectl-describe style text for one environment and its status. */
export function describeEnvironment(env: Environment, status: EnvironmentStatus | undefined, now: Date): string {
  const lines: string[] = [];
  const age = (ts: string) => formatAge(now.getTime() - Date.parse(ts));
  lines.push(`Name:         ${env.metadata.name}`);
  lines.push(`Group:        ${env.spec.group}`);
  lines.push(`Labels:       ${kv(env.metadata.labels)}`);
  lines.push(`Annotations:  ${kv(env.metadata.annotations)}`);
  lines.push(`Created:      ${env.metadata.creationTimestamp ?? '<unknown>'}`);
  if (env.metadata.deletionTimestamp) lines.push(`Deleting:     since ${env.metadata.deletionTimestamp} (berth delete; the controller removes what it owned, then the keys)`);
  lines.push(`Generation:   ${env.metadata.generation ?? 1} (observed: ${status?.observedGeneration ?? '-'})`);
  lines.push(`Nodes:        ${status?.nodes.length ?? 0} held / ${env.spec.nodes} desired`);
  lines.push(`TTL:          ${env.spec.ttl ?? '<none>'}${status?.expiresAt ? ` (expires ${status.expiresAt})` : ''}`);
  lines.push(`Phase:        ${status?.phase ?? '<no status yet>'}`);
  lines.push('Conditions:');
  lines.push(
    status && status.conditions.length > 0
      ? indent(formatTable(['TYPE', 'STATUS', 'REASON', 'MESSAGE'], status.conditions.map((c) => [c.type, c.status, c.reason, c.message])))
      : '  <none>',
  );
  lines.push(`Release:      ${status?.release ? `${status.release.id} (Ready since ${status.release.readySince}${status.release.approvedBy ? `, approved by ${status.release.approvedBy}` : ''})` : '<none>'}`);
  const rb = status?.rollback;
  if (rb) lines.push(`Rolled Back:  to release ${rb.to} from ${rb.from} by ${rb.by} at ${rb.at}, pinned until ${rb.specImages ? "the spec's images change" : 'the next promotion'}`);
  lines.push(...describePromotion(env, status));
  lines.push('Held Nodes:');
  lines.push(
    status && status.nodes.length > 0
      ? indent(formatTable(['HOSTNAME', 'ADDR', 'STATE', 'ID'], status.nodes.map((n) => [n.hostname, n.addr, n.state, n.id])))
      : '  <none>',
  );
  lines.push('Services:');
  const names = Object.keys(env.spec.services).sort();
  if (names.length === 0) lines.push('  <none>');
  const history: string[][] = [];
  for (const name of names) {
    const spec = env.spec.services[name]!;
    const s = status?.services[name];
    lines.push(`  ${name}:`);
    lines.push(`    Image:       ${spec.image}${s && s.image !== spec.image ? ` (running: ${s.image})` : ''}`);
    const resolved = status?.images?.[name];
    if (resolved) lines.push(`    Digest:      ${resolved.digest} (resolved ${resolved.resolvedAt}${spec.track ? `, tracked every ${spec.track}` : ''})`);
    lines.push(`    Replicas:    ${s?.runningReplicas ?? 0} running / ${spec.replicas} desired`);
    lines.push(`    Strategy:    ${spec.strategy.type}${spec.strategy.type === 'blueGreen' ? ` (drain ${spec.strategy.drain}, autoPromote ${spec.strategy.autoPromote})` : ''}`);
    if (s?.activeColor) lines.push(`    Color:       ${s.activeColor}`);
    if (s?.pending) lines.push(`    Pending:     ${s.pending.color} ${s.pending.image} ${s.pending.state} since ${s.pending.since}`);
    if (s?.rolledBack) lines.push(`    RolledBack:  ${s.rolledBack.image} by Swarm at ${s.rolledBack.since} (${s.rolledBack.message}); held until the spec changes`);
    if (s?.tasksPerNode) lines.push(`    Per Node:    ${perNode(s.tasksPerNode, status!.nodes.map((n) => n.hostname))}${spec.placement.rebalance === false ? ' (rebalance: false)' : ''}`);
    if (s?.rebalance) lines.push(`    Rebalance:   ${s.rebalance.state} since ${s.rebalance.since}: ${s.rebalance.message}`);
    lines.push(`    Endpoints:   ${s && s.endpoints.length > 0 ? s.endpoints.join(', ') : '<none>'}`);
    const port = routePort(spec);
    if (port !== undefined) {
      const upstream = s?.route?.upstream ?? routeUpstream(env.metadata.name, name, spec);
      const servers = s?.route?.servers.join(', ') || '<none>';
      lines.push(`    Route:       ${upstream} -> port ${port}${s?.route?.color ? ` (${s.route.color})` : ''}: ${servers}`);
    } else lines.push('    Route:       <none>');
    for (const c of s?.cutovers ?? []) {
      history.push([c.at, name, `${c.fromColor ?? '-'} -> ${c.toColor}`, `${c.fromImage ?? '-'} -> ${c.toImage}`, c.result, `${c.durationSeconds}s`, c.message ?? '']);
    }
  }
  lines.push(...describeJobs(env, status, now));
  lines.push('Cutover History:');
  lines.push(
    history.length > 0
      ? indent(formatTable(['AT', 'SERVICE', 'COLOR', 'IMAGE', 'RESULT', 'DURATION', 'MESSAGE'], history.sort((a, b) => (a[0]! < b[0]! ? -1 : 1))))
      : '  <none>',
  );
  lines.push('Events:');
  const events = [...(status?.conditions ?? [])].sort((a, b) => (a.lastTransitionTime < b.lastTransitionTime ? -1 : 1));
  lines.push(
    events.length > 0
      ? indent(formatTable(['AGE', 'TYPE', 'STATUS', 'REASON', 'MESSAGE'], events.map((c) => [age(c.lastTransitionTime), c.type, c.status, c.reason, c.message])))
      : '  <none>',
  );
  return lines.join('\n') + '\n';
}

/** Each job: its schedule, next run, the runs going and the last finished ones with their results. */
function describeJobs(env: Environment, status: EnvironmentStatus | undefined, now: Date): string[] {
  const names = Object.keys(env.spec.jobs).sort();
  const lines = ['Jobs:'];
  if (names.length === 0) return [...lines, '  <none>'];
  const ago = (ts: string | undefined) => (ts ? `${formatAge(now.getTime() - Date.parse(ts))} ago` : '-');
  for (const name of names) {
    const spec = env.spec.jobs[name]!;
    const j = status?.jobs?.[name];
    const next = j?.nextRunAt ? `${j.nextRunAt} (in ${formatAge(Date.parse(j.nextRunAt) - now.getTime())})` : '<not scheduled yet>';
    lines.push(`  ${name}:`);
    lines.push(`    Image:        ${spec.image}`);
    const resolved = status?.jobImages?.[name];
    if (resolved) lines.push(`    Digest:       ${resolved.digest} (resolved ${resolved.resolvedAt}${spec.track ? `, tracked every ${spec.track}` : ''})`);
    lines.push(`    Schedule:     ${scheduleText(spec)}, concurrency ${spec.concurrency}, retries ${spec.retries} (backoff ${spec.backoff}), timeout ${spec.timeout ?? '<none>'}, history ${spec.history}`);
    lines.push(`    Next Run:     ${next}`);
    lines.push(`    Last Success: ${j?.lastSuccessAt ? `${j.lastSuccessAt} (${ago(j.lastSuccessAt)})` : '<never>'}`);
    if (j?.lastSkipped) lines.push(`    Last Skipped: ${j.lastSkipped.at}: ${j.lastSkipped.reason}`);
    const runs = [...(j?.active ?? []).map((r) => ({ ...r, state: r.retryAt ? `retrying at ${r.retryAt}` : 'running' })), ...(j?.finished ?? []).map((r) => ({ ...r, state: r.result ?? '' }))];
    lines.push('    Runs:');
    lines.push(
      runs.length > 0
        ? indent(
            formatTable(
              ['RUN', 'STATE', 'ATTEMPTS', 'STARTED', 'FINISHED', 'EXIT', 'MESSAGE'],
              runs.sort((a, b) => b.run - a.run).map((r) => [String(r.run), r.state, String(r.attempt), ago(r.startedAt), ago(r.finishedAt), r.exitCode === undefined ? '-' : String(r.exitCode), r.message ?? (r.manual ? 'started by berth run' : '')]),
            ),
            6,
          )
        : '      <none>',
    );
  }
  return lines;
}

/** The promotion gates in order, and where the upstream's newest release stands. */
function describePromotion(env: Environment, status: EnvironmentStatus | undefined): string[] {
  const p = env.spec.promotion;
  if (!p) return [];
  const waiting = status?.promotionPending;
  const order = ['upstream', 'soak', 'verify', 'approval', 'markTag'] as const;
  const state = (gate: (typeof order)[number]) =>
    !waiting ? 'passed' : gate === waiting.gate ? 'waiting' : order.indexOf(gate) < order.indexOf(waiting.gate) ? 'passed' : 'not reached';
  const rows = [
    ['upstream', `${p.from} Ready with a new release`, state('upstream')],
    ['soak', p.soak, state('soak')],
    ...(p.verify ? [['verify', `GET ${p.verify.http.path} → ${p.verify.http.expect} on ${p.from}'s route`, state('verify')]] : []),
    ['approval', p.approval, p.approval === 'auto' ? 'auto' : state('approval')],
    ...(p.markTag ? [['markTag', p.markTag, state('markTag')]] : []),
  ];
  const pending = status?.conditions.find((c) => c.type === 'PromotionPending');
  const promoted = status?.conditions.find((c) => c.type === 'Promoted');
  return [
    `Promotion:    from ${p.from}${waiting?.release ? `, release ${waiting.release} waiting` : ''}`,
    indent(formatTable(['GATE', 'RULE', 'STATE'], rows), 4),
    ...(pending ? [`    Pending:   ${pending.message}`] : []),
    ...(promoted ? [`    ${promoted.reason === 'RolledBack' ? 'RolledBack' : 'Promoted'}:  ${promoted.message}`] : []),
  ];
}

export function registerDescribe(program: Command): void {
  addStoreOptions(
    program.command('describe').description('show an environment in detail').argument('<type>', 'env').argument('<name>'),
  ).action(
    runAction(async (type: string, name: string, flags: StoreFlags) => {
      if (kindFromArg(type) !== 'Environment') throw new UsageError('describe supports envs only: berth describe env NAME');
      return withClient(flags, async (client) => {
        const env = await new ResourceStore(client).get('Environment', name);
        if (!env) throw new NotFoundError('environment', name);
        const status = await new StatusStore(client).getStatus('Environment', name);
        process.stdout.write(describeEnvironment(env, status, new Date()));
      });
    }),
  );
}
