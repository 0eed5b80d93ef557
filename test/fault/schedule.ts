/**
 * Seeded fault schedules. Pure: the same seed gives the same schedule, so a failing point is
 * replayed with BERTH_FAULT_SEED (and `--points` at least as large as the failing point).
 */
import { Prng } from './prng.js';
import { flip, type Shape } from './spec.js';

export type OperationKind = 'create' | 'resize' | 'rolling' | 'bluegreen';
export const OPERATIONS: readonly OperationKind[] = ['create', 'resize', 'rolling', 'bluegreen'];

/**
 * How long after applying an operation its interesting part lasts, ms: the kill lands uniformly
 * in [0, window]. Measured on the lab: a create converges in about 5 s, a blue-green cutover
 * (start green, healthy, probe, switch, 2 s drain) in about 10 s.
 */
export const KILL_WINDOW_MS: Record<OperationKind, number> = { create: 8_000, resize: 5_000, rolling: 6_000, bluegreen: 12_000 };

export interface KillPoint {
  index: number;
  operation: OperationKind;
  /** The spec applied by the operation (for create: after deleting the environment). */
  shape: Shape;
  killAfterMs: number;
}

/** The next shape for an operation: each operation changes what it names and nothing else. */
export function nextShape(rng: Prng, kind: OperationKind, s: Shape): Shape {
  switch (kind) {
    case 'create':
      return s;
    case 'resize': {
      const nodes = rng.pick([1, 2]);
      return { ...s, nodes, api: { ...s.api, replicas: rng.int(1, 2) }, web: { ...s.web, replicas: rng.int(1, 2) } };
    }
    case 'rolling':
      return { ...s, api: { ...s.api, version: flip(s.api.version) } };
    case 'bluegreen':
      return { ...s, web: { ...s.web, version: flip(s.web.version) } };
  }
}

/** `points` kill points; the operations cycle in a shuffled order so each kind gets its share. */
export function killSchedule(seed: number, points: number, initial: Shape): KillPoint[] {
  const rng = new Prng(seed);
  const out: KillPoint[] = [];
  let shape = initial;
  let deck: OperationKind[] = [];
  for (let index = 1; index <= points; index++) {
    if (deck.length === 0) deck = shuffle(rng, [...OPERATIONS]);
    const operation = deck.pop()!;
    shape = nextShape(rng, operation, shape);
    out.push({ index, operation, shape, killAfterMs: rng.int(0, KILL_WINDOW_MS[operation]) });
  }
  return out;
}

export interface PauseRound {
  index: number;
  /** Spec changes of the round, each applied `afterMs` after the previous one. */
  changes: Array<{ operation: Exclude<OperationKind, 'create'>; shape: Shape; afterMs: number }>;
  /** When the leader is stopped (from the round's first change) and for how long. */
  stopAfterMs: number;
  stopForMs: number;
}

/**
 * Rounds of 1–3 spec changes with the leader SIGSTOPped once per round, sometimes shorter than
 * the 10 s leader lease (it resumes as leader), sometimes longer (the standby takes over and the
 * old leader resumes with stale in-flight work).
 */
export function pauseSchedule(seed: number, rounds: number, initial: Shape): PauseRound[] {
  const rng = new Prng(seed ^ 0x5eed);
  const out: PauseRound[] = [];
  let shape = initial;
  for (let index = 1; index <= rounds; index++) {
    const changes: PauseRound['changes'] = [];
    for (let i = rng.int(1, 3); i > 0; i--) {
      const operation = rng.pick(['resize', 'rolling', 'bluegreen'] as const);
      shape = nextShape(rng, operation, shape);
      changes.push({ operation, shape, afterMs: changes.length === 0 ? 0 : rng.int(0, 3_000) });
    }
    out.push({ index, changes, stopAfterMs: rng.int(0, 6_000), stopForMs: rng.int(2_000, 20_000) });
  }
  return out;
}

function shuffle<T>(rng: Prng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
