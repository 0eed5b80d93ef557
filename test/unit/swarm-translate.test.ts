import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRollback } from '../../src/swarm/model.js';
import { toObservedService } from '../../src/swarm/translate.js';

// As the lab's dockerd 20.10 reports a service after an automatic rollback: PreviousSpec gone.
const rolledBack = {
  ID: 'svc1',
  Version: { Index: 2615 },
  Spec: { Name: 'qa_web', Labels: { 'berth.spec-hash': 'aaa' }, Mode: { Replicated: { Replicas: 1 } }, TaskTemplate: { ContainerSpec: { Image: 'web:v1' } } },
  UpdateStatus: { State: 'rollback_completed', StartedAt: '2026-11-25T18:51:26.244382867Z', CompletedAt: '2026-11-25T18:51:44.128208457Z', Message: 'rollback completed' },
};

test('UpdateStatus is observed: state, message and when the rollback started', () => {
  const s = toObservedService(rolledBack);
  assert.deepEqual(s.updateStatus, { state: 'rollback_completed', message: 'rollback completed', startedAt: '2026-11-25T18:51:26.244382867Z' });
  assert.equal(isRollback(s.updateStatus), true);
});

test('a service never updated, or in an ordinary update, is no rollback', () => {
  const { UpdateStatus: _u, ...fresh } = rolledBack;
  assert.equal(toObservedService(fresh).updateStatus, undefined);
  const updating = toObservedService({ ...rolledBack, UpdateStatus: { State: 'updating', StartedAt: 't', Message: 'update in progress' } });
  assert.equal(isRollback(updating.updateStatus), false);
  assert.equal(toObservedService({ ...rolledBack, UpdateStatus: { State: 'something new' } }).updateStatus, undefined, 'an unknown state is not guessed at');
});
