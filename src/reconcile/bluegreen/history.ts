import type { CutoverRecord } from '../../api/status.js';
import { metrics as sharedMetrics, type BerthMetrics } from '../../metrics/registry.js';

/** Keeps the last `max` cutover records (ServiceStatus.cutovers). */
export function appendCutover(history: CutoverRecord[] | undefined, record: CutoverRecord, max = 10): CutoverRecord[] {
  return [...(history ?? []), record].slice(-max);
}

/** berth_cutovers_total{result} and berth_cutover_duration_seconds, after the step was applied. */
export function observeCutover(record: CutoverRecord, m: Pick<BerthMetrics, 'cutoversTotal' | 'cutoverDuration'> = sharedMetrics()): void {
  m.cutoversTotal.inc({ result: record.result });
  if (record.result === 'succeeded') m.cutoverDuration.observe(record.durationSeconds);
}
