import type { Gauge } from 'prom-client';
import { PHASES, type Phase } from '../api/status.js';

/**
 * A gauge that counts keys by the value of one label, kept by the reconciler as it decides each
 * key's value: counting from stored statuses meant reading and parsing every one of them on a
 * timer, the largest part of an idle controller's CPU at a thousand environments.
 */
export class KeyedCount<V extends string> {
  private readonly values = new Map<string, V>();

  constructor(
    private readonly gauge: Gauge<string>,
    private readonly label: string,
    all: readonly V[],
  ) {
    for (const v of all) gauge.set({ [label]: v }, 0);
  }

  set(key: string, value: V): void {
    const before = this.values.get(key);
    if (before === value) return;
    if (before) this.gauge.dec({ [this.label]: before });
    this.gauge.inc({ [this.label]: value });
    this.values.set(key, value);
  }

  forget(key: string): void {
    const before = this.values.get(key);
    if (!before) return;
    this.gauge.dec({ [this.label]: before });
    this.values.delete(key);
  }
}

/** berth_environments{phase}, as the reconciler last decided each environment's phase. */
export class PhaseCount extends KeyedCount<Phase> {
  constructor(gauge: Gauge<'phase'>) {
    super(gauge, 'phase', PHASES);
  }
}
