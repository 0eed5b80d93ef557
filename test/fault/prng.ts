/**
 * A small seeded PRNG (mulberry32): the whole fault schedule follows from one 32-bit seed, so a
 * failing run is replayed exactly with BERTH_FAULT_SEED.
 */
export class Prng {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

/** A fresh seed when none is given: BERTH_FAULT_SEED, else from the clock. */
export function seedFrom(value: string | undefined): number {
  if (value !== undefined && value !== '') {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32) throw new Error(`BERTH_FAULT_SEED must be an integer in [0, 2^32), not ${value}`);
    return n;
  }
  return Date.now() % 2 ** 32;
}
