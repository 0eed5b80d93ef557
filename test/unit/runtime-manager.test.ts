import assert from 'node:assert/strict';
import { test } from 'node:test';
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

test('lease lost: the workers take no more keys, the leader runnables stop, onFatal is called, leader=0', async () => {
  const { election, metrics, fatal, manager, source, reconciler, server } = setup(['env/slow']);
  const started = manager.start();
  election.win();
  await started;
  source.push('env/slow');
  await settle();
  const lost = new Error('lease expired');
  election.lose(lost);
  source.push('env/after');
  await settle();
  assert.deepEqual(fatal, [lost]);
  assert.equal(await metricValue(metrics.leader), 0);
  assert.equal(source.signal?.aborted, true, 'the sources were stopped');
  assert.equal(manager.ready(), false);
  assert.equal(server.signal?.aborted, false, 'the metrics server keeps answering until the process stops');
  reconciler.release('env/slow');
  await settle();
  assert.deepEqual(reconciler.ran, ['env/slow'], 'no key taken after the loss');
  await manager.stop();
  assert.equal(server.finished, true);
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
