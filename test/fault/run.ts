/**
 * The full fault run (`npm run fault -- --seed N --points 100 --rounds 10`), against the lab as
 * `berth lab env` describes it. Run it under the lab's test lock:
 *   npm run build && flock /tmp/berth-lab-tests.lock bash -c \
 *     'eval "$(node bin/berth.js lab env)" && npm run fault -- --points 100'
 * Prints the seed first (BERTH_FAULT_SEED or --seed replays a schedule), one line per point, and
 * a Markdown summary at the end (also written to --out FILE when given). Exit 1 on any failure.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { FaultLab } from './fault-lab.js';
import { seedFrom } from './prng.js';
import { runKillSuite, runPauseSuite, type SuiteRecord } from './suites.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    points: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '10' },
    suite: { type: 'string', default: 'all' },
    out: { type: 'string' },
  },
});
const seed = seedFrom(values.seed ?? process.env.BERTH_FAULT_SEED);
const points = Number(values.points);
const rounds = Number(values.rounds);
console.log(`berth fault run: seed ${seed} (replay: BERTH_FAULT_SEED=${seed}), kill points ${points}, pause rounds ${rounds}`);

const records: SuiteRecord[] = [];
if (values.suite === 'all' || values.suite === 'kill') {
  const lab = new FaultLab('ft-kill', 'ft-kill-g');
  try {
    await lab.start(2);
    records.push(await runKillSuite(lab, points, { seed }));
  } finally {
    await lab.stop();
  }
}
if (values.suite === 'all' || values.suite === 'pause') {
  const lab = new FaultLab('ft-pause', 'ft-pause-g');
  try {
    await lab.start(2);
    records.push(await runPauseSuite(lab, rounds, { seed }));
  } finally {
    await lab.stop();
  }
}

const summary = records.map(markdown).join('\n');
console.log(`\n${summary}`);
if (values.out) writeFileSync(values.out, summary);
process.exit(records.some((r) => r.failures.length > 0) ? 1 : 0);

function markdown(r: SuiteRecord): string {
  const sorted = [...r.recovery].sort((a, b) => a - b);
  const q = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!.toFixed(1) : '-');
  const lines = [
    `### ${r.suite}: seed ${r.seed}`,
    '',
    `- ${r.suite === 'kill' ? 'kill points' : 'pause rounds'} run: ${r.points}, failures: ${r.failures.length}, wall time ${(r.seconds / 60).toFixed(1)} min`,
    `- fault → converged, s: median ${q(0.5)}, p90 ${q(0.9)}, max ${q(1)} (n=${sorted.length})`,
    ...r.notes.map((n) => `- ${n}`),
    ...r.failures.flatMap((f) => [`- FAILED at point ${f.point}: ${f.what}`, ...f.violations.map((v) => `  - ${v}`)]),
    '',
  ];
  return lines.join('\n');
}
