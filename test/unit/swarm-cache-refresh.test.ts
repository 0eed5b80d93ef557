import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { SwarmCache } from '../../src/swarm/cache.js';
import { LABEL_ENV } from '../../src/swarm/labels.js';
import { FakeSwarm, fakeNode } from '../support/fake-swarm.js';

const log = pino({ level: 'silent' });

/**
 * The race that left a hand scale unreverted on the lab (controller-lab (d)): the scale's event
 * marks the service and enqueues its environment; another environment's reconcile (one being
 * deleted, say) reads the services first and takes the mark, its inspect on the way; the
 * environment's own reconcile then found nothing marked and read the replicas from before the
 * scale. Nothing enqueued it again: the event had been spent on that reconcile.
 */
test('a read while another reader refreshes a marked service waits for that refresh: it never gets the value the refresh replaces', async () => {
  const swarm = new FakeSwarm([fakeNode(1, { labels: { [LABEL_ENV]: 'qa-1' } }), fakeNode(2, { labels: { [LABEL_ENV]: 'qa-2' } })]);
  const api = await swarm.createService({ Name: 'qa-1_api', Labels: { [LABEL_ENV]: 'qa-1' }, Mode: { Replicated: { Replicas: 1 } }, TaskTemplate: { ContainerSpec: { Image: 'web:v1' } } });
  const cache = new SwarmCache(swarm, { log });
  const stop = new AbortController();
  const running = cache.run(stop.signal);
  await cache.waitForSync();
  await new Promise((r) => setImmediate(r)); // the event stream is followed

  let answer!: () => void;
  const inspect = swarm.inspectService.bind(swarm);
  swarm.inspectService = async (id) => {
    await new Promise<void>((r) => (answer = r));
    return inspect(id);
  };
  swarm.scaleByHand('qa-1_api', 3);
  const changes: string[] = [];
  cache.subscribe((c) => changes.push(`${c.type} ${c.env}`));
  swarm.emitEvent({ type: 'service', action: 'update', id: api, attributes: { name: 'qa-1_api' } });
  assert.deepEqual(changes, ['service qa-1'], 'the event enqueues qa-1: its reconcile is the read below');
  const other = cache.listServices('qa-2'); // takes the mark; its inspect is on the way
  let read: number | undefined;
  const own = cache.listServices('qa-1').then(([s]) => (read = s?.replicas));
  await new Promise((r) => setImmediate(r));
  assert.equal(read, undefined, 'the read waits for the inspect under way');
  answer();
  await Promise.all([other, own]);
  assert.equal(read, 3);
  assert.equal(swarm.calls.filter((c) => c === 'inspectService').length, 1, 'still one inspect for both readers');
  stop.abort();
  await running;
});
