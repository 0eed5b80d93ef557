import type { JobResult } from '../../api/index.js';
import { ENDED_TASK_STATES, type ObservedTask } from '../../swarm/model.js';

/** One attempt of a run as Swarm shows it: its replicated-job service and that service's tasks. */
export interface ObservedRun {
  serviceId: string;
  run: number;
  attempt: number;
  tasks: ObservedTask[];
}

export interface AttemptOutcome {
  result: JobResult;
  exitCode?: number;
  message: string;
}


/**
 * How an attempt ended, from its task; undefined while it is going (no task yet, or a task on
 * its way or running). Complete is success; failed (a non-zero exit), rejected (it could not
 * start: image, placement) and shut down (its node left) are failure.
 */
export function attemptOutcome(tasks: ObservedTask[]): AttemptOutcome | undefined {
  if (tasks.length === 0 || tasks.some((t) => !ENDED_TASK_STATES.has(t.state))) return undefined;
  if (tasks.some((t) => t.state === 'complete')) return { result: 'succeeded', exitCode: 0, message: 'completed' };
  const t = tasks[tasks.length - 1]!;
  const why = t.error || t.message || t.state;
  return { result: 'failed', ...(t.exitCode !== undefined ? { exitCode: t.exitCode } : {}), message: `${t.state}: ${why}` };
}
