import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotLeaderError } from '../../src/api/errors.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { Controller } from '../../src/runtime/controller.js';
import { Manager } from '../../src/runtime/manager.js';
import type { Runnable } from '../../src/runtime/runnable.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeLeaderElection, FakeSource, metricValue, RecordingReconciler, settle, silentLog } from '../support/fake-runtime.js';

/** A runnable that records its signal and when it finished. */
class Probe implements Runnable {
  signal: AbortSignal | undefined;
  finished = false;
  constructor(
    readonly name: string,
    private readonly events: string[] = [],
  ) {}
  async run(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    this.events.push(`${this.name} stopped`);
    this.finished = true;
  }
}

function setup(hold: string[] = []) {
  const election = new FakeLeaderElection();
  const metrics = createMetrics();
  const fatal: unknown[] = [];
  const manager = new Manager({ election, log: silentLog, metrics, onFatal: (err) => fatal.push(err) });
  const source = new FakeSource('etcd');
  const reconciler = new RecordingReconciler(hold);
  const controller = new Controller({ name: 'test', sources: [source], reconciler, workers: 1, clock: new FakeClock(), metrics, log: silentLog });
  const server = new Probe('server');
  manager.add(controller);
  manager.add(server, { needLeaderElection: false });
  return { election, metrics, fatal, manager, source, reconciler, server };
}

test('leader runnables start only once elected, the others at once; a standby is ready, a leader once synced', async () => {
  const { election, metrics, manager, source, reconciler, server } = setup();
  const started = manager.start();
  await settle();
  assert.ok(server.signal, 'the non-leader runnable runs while standing by');
  assert.equal(source.signal, undefined, 'no source runs before election');
  assert.equal(manager.ready(), true, 'a standby is ready');
  election.win();
  await started;
  assert.equal(await metricValue(metrics.leader), 1);
  assert.equal(manager.ready(), false, 'a leader is not ready before its sources synced');
  source.markSynced();
  assert.equal(manager.ready(), true);
  source.push('env/a');
  await settle();
  assert.deepEqual(reconciler.ran, ['env/a']);
  await manager.stop();
});

test('lease lost: in-flight reconciles are abandoned, the leader runnables stop, leader=0, nothing is fatal, and the manager campaigns again', async () => {
  const { election, metrics, fatal, manager, source, reconciler, server } = setup(['env/slow']);
  const started = manager.start();
  election.win();
  await started;
  source.push('env/slow');
  await settle();
  election.lose(new NotLeaderError('lease expired'));
  source.push('env/after');
  await settle();
  assert.deepEqual(fatal, [], 'losing leadership never ends the process');
  assert.equal(await metricValue(metrics.leader), 0);
  assert.equal(source.signal?.aborted, true, 'the sources were stopped');
  assert.equal(reconciler.signals.get('env/slow')?.aborted, true, 'the in-flight reconcile was aborted, not waited for');
  assert.equal(election.terms[0]?.resigned, true, 'the lost term gave its lease up');
  assert.equal(election.campaigns, 2, 'campaigning again');
  assert.equal(manager.ready(), true, 'a standby again, and ready as one');
  assert.throws(() => manager.leadership.token(), NotLeaderError, 'between terms every write is refused');
  assert.equal(server.signal?.aborted, false, 'the metrics server keeps answering');
  assert.deepEqual(reconciler.ran, ['env/slow'], 'no key taken after the loss');

  election.win();
  await settle();
  assert.equal(await metricValue(metrics.leader), 1, 'leads again');
  assert.equal(source.signal?.aborted, false, 'the sources run again, on a fresh queue');
  assert.equal(manager.leadership.token().createRevision, '2', 'writes carry the new term\'s token');
  source.push('env/b');
  await settle();
  assert.deepEqual(reconciler.ran, ['env/slow', 'env/b']);
  await manager.stop();
  assert.equal(server.finished, true);
});

test('a fenced write that finds the token stale ends the term at once', async () => {
  const { election, metrics, manager } = setup();
  const started = manager.start();
  election.win();
  await started;
  manager.leadership.lost(new NotLeaderError('leader key is another\'s'));
  await settle();
  assert.equal(await metricValue(metrics.leader), 0);
  assert.equal(election.campaigns, 2);
  await manager.stop();
});

test('stop abandons a reconcile still running after the drain timeout, then resigns', async () => {
  const clock = new FakeClock();
  const election = new FakeLeaderElection();
  const metrics = createMetrics();
  const manager = new Manager({ election, log: silentLog, metrics, clock, drainTimeoutMs: 30_000, onFatal: () => {} });
  const source = new FakeSource('etcd');
  const reconciler = new RecordingReconciler(['env/hung']);
  manager.add(new Controller({ name: 'test', sources: [source], reconciler, workers: 1, clock, metrics, log: silentLog }));
  const started = manager.start();
  election.win();
  await started;
  source.push('env/hung');
  await settle();
  let stopped = false;
  const stopping = manager.stop().then(() => (stopped = true));
  await settle();
  assert.equal(manager.ready(), false, '/readyz is false while draining');
  clock.advance(29_999);
  await settle();
  assert.equal(stopped, false, 'still draining');
  assert.equal(election.resigned, false, 'the lease is kept while draining');
  clock.advance(1);
  await stopping;
  assert.equal(reconciler.signals.get('env/hung')?.aborted, true, 'the hung reconcile was abandoned');
  assert.equal(election.resigned, true);
});

test('/healthz: a leader whose work loop has had work longer than the stall timeout without a success is stalled; a standby is not', async () => {
  const clock = new FakeClock();
  const election = new FakeLeaderElection();
  const metrics = createMetrics();
  const manager = new Manager({ election, log: silentLog, metrics, clock, onFatal: () => {} });
  const source = new FakeSource('etcd');
  const reconciler = new RecordingReconciler(['env/hung']);
  manager.add(new Controller({ name: 'berth', sources: [source], reconciler, workers: 1, clock, metrics, log: silentLog, stallTimeoutMs: 60_000 }));
  const started = manager.start();
  clock.advance(600_000);
  assert.equal(manager.stalled(), undefined, 'a standby is healthy');
  election.win();
  await started;
  clock.advance(600_000);
  assert.equal(manager.stalled(), undefined, 'an idle leader is healthy however long it idles');
  source.push('env/hung');
  await settle();
  clock.advance(60_000);
  assert.equal(manager.stalled(), undefined, 'within the stall timeout');
  clock.advance(1_000);
  assert.match(manager.stalled() ?? '', /^berth: no reconcile succeeded for 61 s while work is pending/);
  reconciler.release('env/hung');
  await settle();
  assert.equal(manager.stalled(), undefined, 'the reconcile finished: progress');
  await manager.stop();
});

test('stopped while standing by: start rejects and nothing that needs leadership ran', async () => {
  const { election, manager, source, server } = setup();
  const started = manager.start();
  await settle();
  await manager.stop();
  await assert.rejects(started, /stopped before elected/);
  election.win();
  await settle();
  assert.equal(source.signal, undefined);
  assert.equal(server.finished, true);
});

test('stop drains the running reconcile, then resigns, then stops the other runnables', async () => {
  const { election, manager, source, reconciler } = setup(['env/slow']);
  const events: string[] = [];
  const server = new Probe('late-server', events);
  manager.add(server, { needLeaderElection: false });
  const started = manager.start();
  election.win();
  await started;
  source.push('env/slow');
  await settle();
  const stopping = manager.stop();
  const again = manager.stop();
  await settle();
  assert.equal(election.resigned, false, 'still draining: the lease is kept while a reconcile runs');
  assert.equal(server.finished, false);
  reconciler.release('env/slow');
  await Promise.all([stopping, again]);
  assert.equal(election.resigned, true);
  assert.deepEqual(events, ['late-server stopped']);
});

test('a runnable that fails is fatal', async () => {
  const { election, fatal, manager } = setup();
  const broken: Runnable = { name: 'broken', run: () => Promise.reject(new Error('port in use')) };
  manager.add(broken, { needLeaderElection: false });
  const started = manager.start();
  await settle();
  assert.match(String(fatal[0]), /port in use/);
  election.win();
  await started;
  await manager.stop();
});

test('a reconcile abandoned in one term stays fenced by that term, even once the next term has begun', async () => {
  const election = new FakeLeaderElection();
  const metrics = createMetrics();
  const manager = new Manager({ election, log: silentLog, metrics, onFatal: () => {} });
  const source = new FakeSource('etcd');
  let resume: () => void = () => {};
  const writes: string[] = [];
  const reconciler = {
    kindOf: () => 'Environment',
    async reconcile(key: string) {
      if (key === 'env/blocked') await new Promise<void>((r) => (resume = r)); // a call hung past the term
      try {
        writes.push(`${key} with term ${manager.leadership.token().createRevision}`);
      } catch (err) {
        writes.push(`${key} refused: ${(err as Error).name}`);
      }
    },
  };
  manager.add(new Controller({ name: 'test', sources: [source], reconciler, workers: 1, clock: new FakeClock(), metrics, log: silentLog }));
  const started = manager.start();
  election.win();
  await started;
  source.push('env/blocked');
  await settle();
  election.lose();
  await settle();
  election.win();
  await settle();
  source.push('env/fresh');
  await settle();
  resume();
  await settle();
  assert.deepEqual(writes, ['env/fresh with term 2', 'env/blocked refused: NotLeaderError']);
  await manager.stop();
});
