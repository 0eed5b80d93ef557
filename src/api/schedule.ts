import { Cron } from 'croner';
import { DURATION_PATTERN, parseDuration } from './duration.js';

/**
 * A job's schedule: a five-field cron expression (croner, in the job's timezone), a nickname
 * (`@hourly`, `@daily`, …) or `@every <duration>`. Pure: every answer is a function of its
 * arguments, never of the wall clock.
 */
export interface Schedule {
  /** The first tick strictly after `now`, in the series `tick` belongs to. */
  nextAfter(tick: Date, now: Date): Date;
  /** The first tick strictly after `now`, for a job that has no tick yet. */
  first(now: Date): Date;
  /** How long the tick `tick` lasts: the time to the next one. */
  interval(tick: Date): number;
}

const EVERY = /^@every\s+(\S+)$/;
const NICKNAMES = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);
/** `@every` below this would be a busy loop of Swarm services. */
export const MIN_EVERY_MS = 1_000;

/** Throws an Error saying what is wrong with `schedule` or `timezone`. */
export function compileSchedule(schedule: string, timezone: string): Schedule {
  const every = EVERY.exec(schedule.trim());
  if (every) {
    const text = every[1]!;
    if (!DURATION_PATTERN.test(text)) throw new Error(`"${text}" is not a duration like 30s, 5m or 1h`);
    const ms = parseDuration(text);
    if (ms < MIN_EVERY_MS) throw new Error(`@every must be at least 1s`);
    return {
      // Anchored on the series: ticks stay `ms` apart however late they are looked at.
      nextAfter: (tick, now) => new Date(tick.getTime() + ms * (Math.floor(Math.max(0, now.getTime() - tick.getTime()) / ms) + 1)),
      first: (now) => new Date(now.getTime() + ms),
      interval: () => ms,
    };
  }
  const trimmed = schedule.trim();
  if (!NICKNAMES.has(trimmed) && trimmed.split(/\s+/).length !== 5) {
    throw new Error('must be a five-field cron expression (minute hour day-of-month month day-of-week), a nickname like @daily, or @every <duration>');
  }
  assertTimezone(timezone);
  const cron = new Cron(trimmed, { timezone, paused: true, mode: '5-part' });
  const next = (after: Date): Date => {
    const d = cron.nextRun(after);
    if (!d) throw new Error(`schedule "${schedule}" has no run after ${after.toISOString()}`);
    return d;
  };
  return {
    nextAfter: (_tick, now) => next(now),
    first: next,
    interval: (tick) => next(tick).getTime() - tick.getTime(),
  };
}

function assertTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new Error(`unknown timezone "${timezone}" (use an IANA name like UTC or Europe/Berlin)`);
  }
}
