import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotLeaderError } from '../../src/api/errors.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { CurrentLeadership } from '../../src/runtime/current-leadership.js';
import { reconcileHandler } from '../../src/runtime/handler.js';
import { LeaseTimer } from '../../src/runtime/lease-timer.js';
import { ProgressMonitor } from '../../src/runtime/progress.js';
import { WorkQueue } from '../../src/runtime/queue.js';
import { FencedSwarm } from '../../src/swarm/fenced-swarm.js';
import { FakeClock } from '../support/fake-clock.js';
import { FakeLeadership, handlerDeps, metricValue } from '../support/fake-runtime.js';
import { FakeSwarm } from '../support/fake-swarm.js';

const token = { key: '/berth/leader/election/controller/7', createRevision: '42' };

test('lease timer: held from the grant request for the TTL; a keepalive counts from when the oldest unanswered one was sent', () => {
  const clock = new FakeClock();
  const timer = new LeaseTimer(clock, 10_000);
  assert.ok(timer.remainingMs() <= 0, 'not held before the grant');
  timer.granted(clock.now());
  clock.advance(3_000);
  assert.equal(timer.remainingMs(), 7_000);
  timer.keepaliveSent();
  clock.advance(1_000);
  timer.keepaliveSent(); // a second one before the first was answered
  clock.advance(2_000);
  timer.keepaliveAnswered();
  assert.equal(timer.remainingMs(), 7_000, 'from the first unanswered send (t=3 s), not from the answer (t=6 s)');
  timer.keepaliveAnswered();
  assert.equal(timer.remainingMs(), 7_000, 'an answer without a send in flight changes nothing');
  clock.advance(20_000);
  assert.ok(timer.remainingMs() < 0, 'keepalives unanswered (etcd or this process paused): not held any more');
});

test('between terms every fenced write is refused; in a term the token is the term\'s; a term that ended refuses too', () => {
  const current = new CurrentLeadership();
  assert.throws(() => current.token(), NotLeaderError);
  assert.throws(() => current.assertHeld('createService'), NotLeaderError);
  const term = new FakeLeadership(token);
  current.begin(term);
  assert.deepEqual(current.token(), token);
  current.assertHeld('createService');
  current.lost(new NotLeaderError('stale'));
  assert.equal(term.signal.aborted, true, 'a stale write ends the term');
  assert.throws(() => current.token(), NotLeaderError);
});

test('Docker mutations are refused once the lease is not known to be held past the margin; reads pass', async () => {
  const swarm = new FakeSwarm();
  const term = new FakeLeadership(token);
  const current = new CurrentLeadership();
  current.begin(term);
  const fenced = new FencedSwarm(swarm, current);
  const spec = { Name: 'qa-1_api', Labels: { 'berth.env': 'qa-1' }, TaskTemplate: { ContainerSpec: { Image: 'web:v1' } }, Mode: { Replicated: { Replicas: 1 } } };
  const id = await fenced.createService(spec as never);
  term.held = false;
  swarm.calls = [];
  await assert.rejects(() => fenced.createService(spec as never), NotLeaderError);
  await assert.rejects(() => fenced.updateService(id, 1, spec as never), NotLeaderError);
  await assert.rejects(() => fenced.scaleService(id, 1, 3), NotLeaderError);
  await assert.rejects(() => fenced.removeService(id), NotLeaderError);
  await assert.rejects(() => fenced.updateNodeLabels('n1', 1, {}), NotLeaderError);
  assert.deepEqual(swarm.calls, [], 'nothing reached Docker');
  assert.equal((await fenced.listServices()).length, 1, 'reads still work');
});

test('a reconcile that hits NotLeaderError stops: counted terminal, not retried', async () => {
  const clock = new FakeClock();
  const metrics = createMetrics();
  const queue = new WorkQueue({ clock });
  const deps = handlerDeps({ queue, clock, metrics, reconcile: async () => Promise.reject(new NotLeaderError('refused')) });
  queue.add('env/a');
  const key = (await queue.get())!;
  assert.equal(await reconcileHandler(deps, key), 'terminal');
  queue.done(key);
  assert.equal(queue.retries('env/a'), 0);
  clock.advance(600_000);
  assert.equal(queue.depth, 0, 'not re-queued');
  assert.equal(await metricValue(metrics.reconcilesTotal, { kind: 'env', result: 'terminal' }), 1);
});

test('progress: idle is healthy; work pending past the stall timeout without a success is stalled, counted from when the work came', async () => {
  const clock = new FakeClock();
  const queue = new WorkQueue({ clock, baseDelayMs: 1_000 });
  const progress = new ProgressMonitor(clock, 60_000, () => queue.busySince);
  clock.advance(3_600_000);
  assert.equal(progress.stalled(), undefined, 'an hour idle');
  queue.add('env/a');
  clock.advance(59_000);
  assert.equal(progress.stalled(), undefined, 'work came 59 s ago, not an hour ago');
  const key = (await queue.get())!;
  queue.addRateLimited(key); // the reconcile failed: waiting to be retried is still work
  queue.done(key);
  clock.advance(2_000);
  assert.match(progress.stalled() ?? '', /no reconcile succeeded for 61 s/);
  clock.advance(1_000);
  const again = (await queue.get())!;
  queue.forget(again);
  queue.done(again);
  progress.succeeded();
  assert.equal(progress.stalled(), undefined, 'succeeded, and idle again');
});
