import { pino } from 'pino';
import { createMetrics, type BerthMetrics } from '../../src/metrics/registry.js';
import type { HandlerDeps, ReconcileResult, Reconciler } from '../../src/runtime/handler.js';
import { NotLeaderError } from '../../src/api/errors.js';
import type { LeaderElection, Leadership } from '../../src/runtime/leader.js';
import type { FenceToken } from '../../src/store/fence.js';
import type { WorkQueue } from '../../src/runtime/queue.js';
import type { Enqueue, Source } from '../../src/runtime/source.js';
import type { FakeClock } from './fake-clock.js';

export const silentLog = pino({ level: 'silent' });

/** reconcileHandler's dependencies around one reconcile function, with fresh metrics. */
export function handlerDeps(o: {
  queue: WorkQueue;
  clock: FakeClock;
  reconcile: (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;
  timeoutMs?: number;
  metrics?: BerthMetrics;
}): HandlerDeps {
  return {
    queue: o.queue,
    clock: o.clock,
    reconciler: { reconcile: o.reconcile, kindOf: (key) => key.split('/')[0]! },
    timeoutMs: o.timeoutMs ?? 60_000,
    metrics: o.metrics ?? createMetrics(),
    log: silentLog,
  };
}

/** The value of a counter or gauge for one set of labels (0 when never set). */
export async function metricValue(metric: { get(): Promise<{ values: { labels: object; value: number }[] }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  const match = values.find((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val));
  return match?.value ?? 0;
}

/** One term of a FakeLeaderElection: lose() ends it; `held` says whether the lease still covers a mutation. */
export class FakeLeadership implements Leadership {
  private readonly ended = new AbortController();
  held = true;
  resigned = false;

  constructor(readonly fenceToken: FenceToken) {}

  get signal(): AbortSignal {
    return this.ended.signal;
  }

  token(): FenceToken {
    if (this.ended.signal.aborted) throw new NotLeaderError('term ended');
    return this.fenceToken;
  }

  lost(err: NotLeaderError): void {
    this.ended.abort(err);
  }

  assertHeld(operation: string): void {
    if (this.ended.signal.aborted || !this.held) throw new NotLeaderError(`${operation}: lease not held`);
  }

  async resign(): Promise<void> {
    this.resigned = true;
    this.ended.abort(new NotLeaderError('resigned'));
  }
}

/** A leader election the test decides: win() elects, lose() ends the term; every campaign is recorded. */
export class FakeLeaderElection implements LeaderElection {
  readonly identity = 'test-replica';
  campaigns = 0;
  terms: FakeLeadership[] = [];
  private elect: ((term: FakeLeadership) => void) | undefined;

  campaign(signal: AbortSignal): Promise<Leadership> {
    this.campaigns++;
    return new Promise((resolve, reject) => {
      this.elect = resolve;
      signal.addEventListener('abort', () => reject(new Error('stopped before elected')), { once: true });
    });
  }

  /** Elects the pending campaign; the term's fence token carries the term's number. */
  win(): FakeLeadership {
    const term = new FakeLeadership({ key: '/berth/leader/election/controller/1', createRevision: String(this.terms.length + 1) });
    this.terms.push(term);
    this.elect?.(term);
    return term;
  }

  lose(err = new NotLeaderError('lease lost')): void {
    this.current?.lost(err);
  }

  get current(): FakeLeadership | undefined {
    return this.terms.at(-1);
  }

  /** The last term resigned (a graceful stop gives the lease up). */
  get resigned(): boolean {
    return this.current?.resigned ?? false;
  }
}

/** An Enqueue that records every key added, in order. */
export class RecordingQueue implements Enqueue {
  keys: string[] = [];
  /** The delay asked for each key added with addAfter, last one wins. */
  delays = new Map<string, number>();
  add(key: string): void {
    this.keys.push(key);
  }
  addAfter(key: string, ms: number): void {
    this.delays.set(key, ms);
    this.keys.push(key);
  }
  /** The keys added since the last take(), sorted and without repeats. */
  take(): string[] {
    const keys = [...new Set(this.keys)].sort();
    this.keys = [];
    return keys;
  }
}

/** A source the test drives: push() adds a key, markSynced() reports a full view, fail() breaks it. */
export class FakeSource implements Source {
  signal: AbortSignal | undefined;
  private queue: Enqueue | undefined;
  private synced: (() => void) | undefined;
  private failed: ((err: Error) => void) | undefined;

  constructor(readonly name: string) {}

  run(queue: Enqueue, signal: AbortSignal, synced: () => void): Promise<void> {
    this.queue = queue;
    this.signal = signal;
    this.synced = synced;
    return new Promise((resolve, reject) => {
      this.failed = reject;
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  push(key: string): void {
    this.queue?.add(key);
  }

  markSynced(): void {
    this.synced?.();
  }

  fail(err: Error): void {
    this.failed?.(err);
  }
}

/** A reconciler that records the keys it ran; a key listed in `hold` waits until release(key). */
export class RecordingReconciler implements Reconciler {
  ran: string[] = [];
  /** The signal each key's last reconcile got. */
  signals = new Map<string, AbortSignal>();
  private readonly held = new Map<string, () => void>();

  constructor(private readonly hold: string[] = []) {}

  kindOf(): string {
    return 'Environment';
  }

  async reconcile(key: string, signal: AbortSignal): Promise<void> {
    this.ran.push(key);
    this.signals.set(key, signal);
    if (this.hold.includes(key)) await new Promise<void>((r) => this.held.set(key, r));
  }

  release(key: string): void {
    this.held.get(key)?.();
  }
}

/** Lets pending promise callbacks and I/O-free continuations run. */
export const settle = async (rounds = 5) => {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
};
