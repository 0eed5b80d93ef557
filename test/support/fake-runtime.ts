import { pino } from 'pino';
import { createMetrics, type BerthMetrics } from '../../src/metrics/registry.js';
import type { HandlerDeps, ReconcileResult, Reconciler } from '../../src/runtime/handler.js';
import type { LeaderElection } from '../../src/runtime/leader.js';
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

/** A leader election the test decides: win() elects, lose() takes the lease away. */
export class FakeLeaderElection implements LeaderElection {
  readonly identity = 'test-replica';
  resigned = false;
  private elected: (() => void) | undefined;
  private lost: ((err: Error) => void) | undefined;

  elect(signal: AbortSignal, onLost: (err: Error) => void): Promise<void> {
    this.lost = onLost;
    return new Promise((resolve, reject) => {
      this.elected = resolve;
      signal.addEventListener('abort', () => reject(new Error('stopped before elected')), { once: true });
    });
  }

  win(): void {
    this.elected?.();
  }

  lose(err = new Error('lease lost')): void {
    this.lost?.(err);
  }

  async resign(): Promise<void> {
    this.resigned = true;
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
  private readonly held = new Map<string, () => void>();

  constructor(private readonly hold: string[] = []) {}

  kindOf(): string {
    return 'Environment';
  }

  async reconcile(key: string): Promise<void> {
    this.ran.push(key);
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
