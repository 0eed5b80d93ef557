import assert from 'node:assert/strict';
import { test } from 'node:test';
import { environmentSchema, type EnvironmentStatus } from '../../src/api/index.js';
import { describeEnvironment } from '../../src/cli/describe.js';

test("berth describe env shows each job's schedule, next run, last success and its runs with their results", () => {
  const env = environmentSchema.parse({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: 'batch', generation: 1 },
    spec: { group: 'g', nodes: 1, jobs: { report: { image: 'reg:5000/web:v1', schedule: '0 2 * * *', timezone: 'Europe/Berlin', retries: 2, timeout: '10m' } } },
  });
  const status: EnvironmentStatus = {
    observedGeneration: 1,
    phase: 'Ready',
    conditions: [],
    nodes: [],
    services: {},
    jobs: {
      report: {
        schedule: '0 2 * * * (Europe/Berlin)',
        nextRunAt: '2030-01-02T01:00:00.000Z',
        lastRun: 3,
        active: [{ run: 3, attempt: 2, startedAt: '2030-01-01T12:00:00.000Z', attemptStartedAt: '2030-01-01T12:00:20.000Z', retryAt: '2030-01-01T12:01:00.000Z' }],
        finished: [
          { run: 2, attempt: 1, startedAt: '2030-01-01T01:00:00.000Z', attemptStartedAt: '2030-01-01T01:00:00.000Z', finishedAt: '2030-01-01T01:00:05.000Z', result: 'failed', exitCode: 3, message: 'failed: task: non-zero exit (3)' },
          { run: 1, attempt: 1, manual: true, startedAt: '2029-12-31T10:00:00.000Z', attemptStartedAt: '2029-12-31T10:00:00.000Z', finishedAt: '2029-12-31T10:00:04.000Z', result: 'succeeded', exitCode: 0 },
        ],
        lastSuccessAt: '2029-12-31T10:00:04.000Z',
      },
    },
    jobImages: { report: { ref: 'reg:5000/web:v1', digest: `sha256:${'e'.repeat(64)}`, specHash: 'h', resolvedAt: '2030-01-01T00:00:00.000Z' } },
    updatedAt: '2030-01-01T12:00:30.000Z',
  };
  const text = describeEnvironment(env, status, new Date('2030-01-01T12:00:30.000Z'));
  const jobs = text.slice(text.indexOf('Jobs:'), text.indexOf('Cutover History:'));
  assert.match(jobs, /report:/);
  assert.match(jobs, /Digest: +sha256:e{64} \(resolved 2030-01-01T00:00:00.000Z\)/);
  assert.match(jobs, /Schedule: +0 2 \* \* \* \(Europe\/Berlin\), concurrency forbid, retries 2 \(backoff 10s\), timeout 10m, history 3/);
  assert.match(jobs, /Next Run: +2030-01-02T01:00:00.000Z \(in 12h\)/);
  assert.match(jobs, /Last Success: +2029-12-31T10:00:04.000Z/);
  assert.match(jobs, /3 +retrying at 2030-01-01T12:01:00.000Z +2 /);
  assert.match(jobs, /2 +failed +1 .* 3 +failed: task: non-zero exit \(3\)/);
  assert.match(jobs, /1 +succeeded +1 .* 0 +started by berth run/);
});
