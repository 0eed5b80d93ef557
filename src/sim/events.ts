import { exact, labels, prefix, type Filters } from './filters.js';

/*
 * Docker's event stream (`GET /events`): JSON lines of {Type, Action, Actor{ID, Attributes},
 * scope, time, timeNano}, container events also with the legacy status/id/from. The bus keeps
 * the last events (Docker keeps 256) so a subscriber with `since` gets them replayed, then
 * every new one that passes its filters.
 */

export interface DockerEvent {
  status?: string;
  id?: string;
  from?: string;
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local' | 'swarm';
  time: number;
  timeNano: bigint;
}

export const EVENT_FILTERS = [
  'config', 'container', 'daemon', 'event', 'image', 'label', 'network', 'node', 'plugin', 'scope', 'secret', 'service', 'type', 'volume',
] as const;

export type EventListener = (e: DockerEvent) => void;

export class EventBus {
  private readonly recent: DockerEvent[] = [];
  private readonly listeners = new Set<EventListener>();
  private lastNano = 0n;

  constructor(private readonly keep = 256) {}

  /** Time stamps are strictly increasing, so `since` and ordering never tie. */
  stamp(nowMs: number): { time: number; timeNano: bigint } {
    let nano = BigInt(nowMs) * 1_000_000n;
    if (nano <= this.lastNano) nano = this.lastNano + 1n;
    this.lastNano = nano;
    return { time: Number(nano / 1_000_000_000n), timeNano: nano };
  }

  publish(e: DockerEvent): void {
    this.recent.push(e);
    if (this.recent.length > this.keep) this.recent.splice(0, this.recent.length - this.keep);
    for (const l of this.listeners) l(e);
  }

  /** Events kept since `sinceNano` (inclusive), then live events until unsubscribed. */
  subscribe(listener: EventListener, sinceNano?: bigint): { replay: DockerEvent[]; unsubscribe: () => void } {
    const replay = sinceNano === undefined ? [] : this.recent.filter((e) => e.timeNano >= sinceNano);
    this.listeners.add(listener);
    return { replay, unsubscribe: () => this.listeners.delete(listener) };
  }

  get subscribers(): number {
    return this.listeners.size;
  }
}

/** daemon/events/filter.go: every filter key must pass; names match by id or `name` prefix. */
export function eventMatches(f: Filters, e: DockerEvent): boolean {
  const a = e.Actor.Attributes;
  const byIdOrName = (type: string) => e.Type !== type ? !f.has(type) : prefix(f, type, e.Actor.ID, a.name);
  return (
    exact(f, 'event', e.Action) &&
    exact(f, 'type', e.Type) &&
    exact(f, 'scope', e.scope) &&
    byIdOrName('container') &&
    byIdOrName('service') &&
    byIdOrName('node') &&
    byIdOrName('config') &&
    byIdOrName('secret') &&
    byIdOrName('network') &&
    byIdOrName('volume') &&
    byIdOrName('plugin') &&
    byIdOrName('daemon') &&
    (e.Type !== 'image' ? !f.has('image') : prefix(f, 'image', e.Actor.ID, a.name)) &&
    labels(f, 'label', a)
  );
}

/** One JSON line; timeNano is written exactly (it does not fit a double). */
export function eventLine(e: DockerEvent): string {
  const { timeNano, ...rest } = e;
  return `${JSON.stringify(rest).slice(0, -1)},"timeNano":${timeNano}}\n`;
}

/** Docker's `since`/`until`: seconds, optionally with a fraction (`1700000000.123456789`). */
export function parseEventTime(raw: string | null): bigint | undefined {
  if (raw === null || raw === '') return undefined;
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(raw);
  if (!m) throw new Error(`invalid timestamp: ${raw}`);
  return BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0');
}
