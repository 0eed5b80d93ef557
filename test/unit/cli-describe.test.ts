import assert from 'node:assert/strict';
import { test } from 'node:test';
import { environmentSchema, type EnvironmentStatus } from '../../src/api/index.js';
import { describeEnvironment } from '../../src/cli/describe.js';

const NOW = new Date('2026-01-01T00:00:00Z');

const env = environmentSchema.parse({
  apiVersion: 'berth.dev/v1alpha1',
  kind: 'Environment',
  metadata: { name: 'qa', generation: 2 },
  spec: {
    group: 'g',
    nodes: 3,
    services: { web: { image: 'i', replicas: 6 }, pinned: { image: 'i', replicas: 6, placement: { rebalance: false } } },
  },
});

const status: EnvironmentStatus = {
  observedGeneration: 2,
  phase: 'Progressing',
  conditions: [],
  nodes: ['lab-1', 'lab-2', 'lab-3'].map((hostname, i) => ({ id: `n${i}`, hostname, addr: `10.77.0.1${i + 1}`, state: 'ready' })),
  services: {
    web: {
      desiredReplicas: 6,
      runningReplicas: 7,
      image: 'i',
      endpoints: [],
      tasksPerNode: { 'lab-1': 3, 'lab-2': 3, 'lab-3': 1 },
      rebalance: { state: 'Moving', nodes: ['n0', 'n1', 'n2'], generation: 2, since: NOW.toISOString(), moves: 1, unevenness: 4, message: 'moving task 1 to spread lab-1 3, lab-2 3, lab-3 0' },
    },
    pinned: { desiredReplicas: 6, runningReplicas: 6, image: 'i', endpoints: [], tasksPerNode: { 'lab-1': 3, 'lab-2': 3 } },
  },
  updatedAt: NOW.toISOString(),
};

test('describe env shows running tasks per node for each service, every held node listed, and a rebalance under way', () => {
  const text = describeEnvironment(env, status, NOW);
  assert.match(text, /\n {4}Per Node: {4}lab-1 3, lab-2 3, lab-3 1\n/);
  assert.match(text, /\n {4}Per Node: {4}lab-1 3, lab-2 3, lab-3 0 \(rebalance: false\)\n/);
  assert.match(text, /\n {4}Rebalance: {3}Moving since 2026-01-01T00:00:00.000Z: moving task 1 to spread lab-1 3, lab-2 3, lab-3 0\n/);
});
