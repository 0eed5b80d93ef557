/**
 * The CI share of the kill -9 fault suite (test/fault/): two controllers on the lab, a seeded
 * random schedule of operations (create, resize, rolling update, blue-green cutover), the leader
 * killed with SIGKILL at a random delay after each; after every point the checker must find no
 * duplicate and no orphaned service, the route on exactly one healthy colour, observedGeneration
 * == generation (Ready), and nginx serving the last spec's version.
 * BERTH_FAULT_SEED replays a schedule; BERTH_FAULT_POINTS sets its length (default 4 here; the
 * full run is `npm run fault`, see the README).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FaultLab } from '../fault/fault-lab.js';
import { seedFrom } from '../fault/prng.js';
import { runKillSuite } from '../fault/suites.js';

const seed = seedFrom(process.env.BERTH_FAULT_SEED);
const points = Number(process.env.BERTH_FAULT_POINTS ?? 4);
const lab = new FaultLab('ft-kill', 'ft-kill-g');

before(() => lab.start(2));
after(() => lab.stop());

test(`kill -9 of the leader at ${points} random points (seed ${seed})`, async () => {
  const record = await runKillSuite(lab, points, { seed, maxFailures: 1 });
  for (const note of record.notes) console.log(note);
  assert.deepEqual(record.failures, [], `seed ${seed} (replay: BERTH_FAULT_SEED=${seed}); log: ${lab.log}`);
  assert.equal(record.points, points);
});
