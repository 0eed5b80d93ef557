import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { handleShutdownSignals } from '../../src/cli/signals.js';

const log = pino({ level: 'silent' });

test('the first SIGTERM requests a graceful shutdown', async () => {
  const shutdown = handleShutdownSignals(log);
  try {
    assert.equal(shutdown.bySignal, false);
    process.emit('SIGTERM', 'SIGTERM');
    await shutdown.requested;
    assert.equal(shutdown.bySignal, true);
  } finally {
    shutdown.dispose();
  }
});

test('trigger shuts down without counting as a signal, and dispose removes the handlers', async () => {
  const before = process.listenerCount('SIGINT');
  const shutdown = handleShutdownSignals(log);
  assert.equal(process.listenerCount('SIGINT'), before + 1);
  shutdown.trigger();
  await shutdown.requested;
  assert.equal(shutdown.bySignal, false);
  shutdown.dispose();
  assert.equal(process.listenerCount('SIGINT'), before);
});
