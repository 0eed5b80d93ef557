/**
 * The CI share of the SIGSTOP fault suite (test/fault/): two controllers on the lab, specs
 * changing while the leader is SIGSTOPped and resumed at random (sometimes past its 10 s lease,
 * so the standby takes over and the old leader resumes with stale work). Afterwards the Swarm
 * equals the last spec (the checker), and no service was updated more often than its spec
 * changes require (Docker service update events on the manager).
 * BERTH_FAULT_SEED replays; BERTH_FAULT_ROUNDS sets the number of rounds (default 2 here).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FaultLab } from '../fault/fault-lab.js';
import { seedFrom } from '../fault/prng.js';
import { runPauseSuite } from '../fault/suites.js';

const seed = seedFrom(process.env.BERTH_FAULT_SEED);
const rounds = Number(process.env.BERTH_FAULT_ROUNDS ?? 2);
const lab = new FaultLab('ft-pause', 'ft-pause-g');

before(() => lab.start(2));
after(() => lab.stop());

test(`leader SIGSTOPped and resumed over ${rounds} rounds of spec changes (seed ${seed})`, async () => {
  const record = await runPauseSuite(lab, rounds, { seed });
  for (const note of record.notes) console.log(note);
  assert.deepEqual(record.failures, [], `seed ${seed} (replay: BERTH_FAULT_SEED=${seed}); log: ${lab.log}`);
  assert.equal(record.points, rounds);
});
