/**
 * The two fault suites on the lab, each a seeded schedule run against one environment:
 * - kill: two controllers; after each operation the leader gets kill -9 at a random delay and a
 *   new replica is started in its place; then the checker must pass on the converged state;
 * - pause: two controllers; while specs change the leader is SIGSTOPped and resumed at random;
 *   at the end the Swarm must equal the last spec, and no service may have been updated more
 *   often than the spec changes require (Docker service update events on the manager).
 * Each returns its record (seed, points, timings, failures); neither throws on a violation.
 */
import { check, converged, type Observation } from './checker.js';
import { sleep, until, type FaultLab, type ServiceEvent } from './fault-lab.js';
import { INITIAL, updatesAllowed, type Shape } from './spec.js';
import { killSchedule, pauseSchedule, type KillPoint, type PauseRound } from './schedule.js';

export interface Failure {
  point: number;
  what: string;
  violations: string[];
}

export interface SuiteRecord {
  suite: 'kill' | 'pause';
  seed: number;
  points: number;
  seconds: number;
  /** Seconds from the fault to a converged environment, per point. */
  recovery: number[];
  failures: Failure[];
  notes: string[];
}

export interface SuiteOptions {
  seed: number;
  log?: (line: string) => void;
  /** How long the environment may take to converge after a fault. */
  convergeTimeoutMs?: number;
  /** Stop after this many failures (later points would mostly report the same broken state). */
  maxFailures?: number;
}

const CONVERGE_MS = 120_000;
/** After converging, the drain scales the old colour down: let the checker's view settle this long. */
const SETTLE_MS = 15_000;

/** Waits for convergence, then checks until clean or settled; returns the last observation. */
async function settle(lab: FaultLab, shape: Shape, convergeTimeoutMs: number): Promise<{ observation: Observation; convergedAt: number | undefined }> {
  let convergedAt: number | undefined;
  try {
    await until('converged', async () => converged(lab, shape), convergeTimeoutMs, 250);
    convergedAt = Date.now();
  } catch {
    // reported below through the checker's violations
  }
  const settleFrom = Date.now();
  for (;;) {
    const observation = await check(lab, shape);
    if (observation.violations.length === 0 || Date.now() - settleFrom > SETTLE_MS) {
      if (convergedAt === undefined) observation.violations.unshift(`did not converge within ${convergeTimeoutMs / 1000} s`);
      return { observation, convergedAt };
    }
    await sleep(1_000);
  }
}

function describeKill(p: KillPoint): string {
  const s = p.shape;
  return `#${p.index} ${p.operation} (nodes ${s.nodes}, api ${s.api.version}×${s.api.replicas}, web ${s.web.version}×${s.web.replicas}), kill -9 after ${p.killAfterMs} ms`;
}

/**
 * A suite's record, begun: the initial spec applied and settled with no fault. Returns undefined
 * when that already failed (the record then holds the failure and the suite ends).
 */
async function begin(lab: FaultLab, suite: SuiteRecord['suite'], size: string, opts: SuiteOptions): Promise<{ record: SuiteRecord; started: number } | { failed: SuiteRecord }> {
  const record: SuiteRecord = { suite, seed: opts.seed, points: 0, seconds: 0, recovery: [], failures: [], notes: [] };
  const started = Date.now();
  (opts.log ?? console.log)(`fault ${suite}: seed ${opts.seed} (replay: BERTH_FAULT_SEED=${opts.seed}), ${size}`);
  await lab.applyShape(INITIAL);
  const first = await settle(lab, INITIAL, opts.convergeTimeoutMs ?? CONVERGE_MS);
  first.observation.violations.push(...lab.takeExits());
  if (first.observation.violations.length === 0) return { record, started };
  record.failures.push({ point: 0, what: 'initial spec, no fault', violations: first.observation.violations });
  record.seconds = (Date.now() - started) / 1000;
  return { failed: record };
}

export async function runKillSuite(lab: FaultLab, points: number, opts: SuiteOptions): Promise<SuiteRecord> {
  const log = opts.log ?? console.log;
  const schedule = killSchedule(opts.seed, points, INITIAL);
  const begun = await begin(lab, 'kill', `${points} points`, opts);
  if ('failed' in begun) return begun.failed;
  const { record, started } = begun;

  let midOperation = 0;
  for (const p of schedule) {
    const t0 = Date.now();
    if (p.operation === 'create') await lab.deleteEnvironment();
    const leader = await lab.leader();
    await lab.applyShape(p.shape);
    await sleep(p.killAfterMs);
    await lab.kill9(leader);
    const killedAt = Date.now();
    // No controller can act until the lease expires: this is the state the kill interrupted.
    if (!(await converged(lab, p.shape))) midOperation++;
    await lab.startController();
    const { observation, convergedAt } = await settle(lab, p.shape, opts.convergeTimeoutMs ?? CONVERGE_MS);
    observation.violations.push(...lab.takeExits());
    record.points++;
    if (convergedAt !== undefined) record.recovery.push((convergedAt - killedAt) / 1000);
    const line = `${describeKill(p)}: ${observation.violations.length === 0 ? 'ok' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
    log(line);
    if (observation.violations.length > 0) {
      record.failures.push({ point: p.index, what: describeKill(p), violations: observation.violations });
      log(`  seed ${opts.seed}, point ${p.index}:\n    ${observation.violations.join('\n    ')}\n  log: ${lab.log}`);
      if (record.failures.length >= (opts.maxFailures ?? 3)) {
        record.notes.push(`stopped after ${record.failures.length} failures`);
        break;
      }
    }
  }
  record.notes.push(`${midOperation} of ${record.points} kills landed before the operation had converged (the others hit a converged environment)`);
  record.seconds = (Date.now() - started) / 1000;
  return record;
}

function describeRound(r: PauseRound): string {
  const changes = r.changes.map((c) => `${c.operation}${c.afterMs ? ` +${c.afterMs}ms` : ''}`).join(', ');
  const last = r.changes.at(-1)!.shape;
  return `round ${r.index}: ${changes} → (nodes ${last.nodes}, api ${last.api.version}×${last.api.replicas}, web ${last.web.version}×${last.web.replicas}); SIGSTOP leader at +${r.stopAfterMs} ms for ${r.stopForMs} ms`;
}

/**
 * Updates berth made. Swarm's updater writes the service too: its progress and its automatic
 * rollback (which changes the image back) carry a non-empty `updatestate.new`; a client's update
 * resets the update state (empty `updatestate.new`) or leaves it alone. Events with nothing but
 * the name (the allocator's writes, and a label-only update) cannot be told apart and are left out.
 */
export function berthUpdates(events: ServiceEvent[]): ServiceEvent[] {
  return events.filter((e) => !e.attributes['updatestate.new'] && Object.keys(e.attributes).some((k) => k !== 'name'));
}

export async function runPauseSuite(lab: FaultLab, rounds: number, opts: SuiteOptions): Promise<SuiteRecord> {
  const log = opts.log ?? console.log;
  const schedule = pauseSchedule(opts.seed, rounds, INITIAL);
  const begun = await begin(lab, 'pause', `${rounds} rounds`, opts);
  if ('failed' in begun) return begun.failed;
  const { record, started } = begun;

  const watch = await lab.watchServiceUpdates();
  let shape = INITIAL;
  const allowed = { api: 0, web: 0 };
  try {
    for (const r of schedule) {
      const t0 = Date.now();
      const leader = await lab.leader();
      const pause = (async () => {
        await sleep(r.stopAfterMs);
        lab.pause(leader);
        await sleep(r.stopForMs);
        lab.resume(leader);
      })();
      for (const c of r.changes) {
        await sleep(c.afterMs);
        const add = updatesAllowed(shape, c.shape);
        allowed.api += add.api;
        allowed.web += add.web;
        shape = c.shape;
        await lab.applyShape(shape);
      }
      await pause;
      record.points++;
      log(`${describeRound(r)}: applied in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    const lastChange = Date.now();
    const { observation, convergedAt } = await settle(lab, shape, opts.convergeTimeoutMs ?? CONVERGE_MS);
    if (convergedAt !== undefined) record.recovery.push((convergedAt - lastChange) / 1000);
    // Late writes of a resumed ex-leader would come now: watch a while longer before counting.
    await sleep(5_000);
    const updates = berthUpdates(watch.events);
    const count = (prefix: string) => updates.filter((e) => e.name.startsWith(prefix)).length;
    const seen = { api: count(`${lab.env}_api`), web: count(`${lab.env}_web_`) };
    const shapes = new Map<string, number>();
    for (const e of watch.events) {
      const keys = Object.keys(e.attributes).filter((k) => k !== 'name').sort().join('+') || '(name only)';
      shapes.set(keys, (shapes.get(keys) ?? 0) + 1);
    }
    record.notes.push(
      `service updates: api ${seen.api} (allowed ${allowed.api}), web ${seen.web} (allowed ${allowed.web}); ` +
        `${watch.events.length} update events in all, ${watch.events.length - updates.length} of them Swarm's own (update progress, rollback) or name-only ` +
        `(attributes: ${[...shapes].map(([k, n]) => `${k} ×${n}`).join(', ')})`,
    );
    const violations = [...lab.takeExits(), ...observation.violations];
    for (const svc of ['api', 'web'] as const) {
      if (seen[svc] > allowed[svc]) {
        const detail = updates.filter((e) => e.name.startsWith(`${lab.env}_${svc}`)).map((e) => `${e.name} ${JSON.stringify(e.attributes)}`);
        violations.push(`${svc} updated ${seen[svc]} times, its spec changes allow ${allowed[svc]}:\n      ${detail.join('\n      ')}`);
      }
    }
    log(`pause: final state ${violations.length === 0 ? 'ok' : 'FAILED'}; ${record.notes.at(-1)}`);
    if (violations.length > 0) {
      record.failures.push({ point: rounds, what: `after ${rounds} rounds`, violations });
      log(`  seed ${opts.seed}:\n    ${violations.join('\n    ')}\n  log: ${lab.log}`);
    }
  } finally {
    watch.stop();
  }
  record.seconds = (Date.now() - started) / 1000;
  return record;
}
