import type { Gauge } from 'prom-client';
import { PHASES, type Phase } from '../api/status.js';

/**
 * berth_environments{phase}, kept by the reconciler as it decides each environment's phase:
 * counting from stored statuses meant reading and parsing every one of them on a timer, the
 * largest part of an idle controller's CPU at a thousand environments.
 */
export class PhaseCount {
  private readonly phases = new Map<string, Phase>();

  constructor(private readonly gauge: Gauge<'phase'>) {
    for (const phase of PHASES) gauge.set({ phase }, 0);
  }

  set(env: string, phase: Phase): void {
    const before = this.phases.get(env);
    if (before === phase) return;
    if (before) this.gauge.dec({ phase: before });
    this.gauge.inc({ phase });
    this.phases.set(env, phase);
  }

  forget(env: string): void {
    const before = this.phases.get(env);
    if (!before) return;
    this.gauge.dec({ phase: before });
    this.phases.delete(env);
  }
}
