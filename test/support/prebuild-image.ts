/**
 * Builds berth's test image (berth-image.ts) before the lab files that run it: test/run-all.sh
 * starts this in the background while the first lab files run, so the build (minutes on a fresh
 * machine: the Debian base, the production node_modules, the push) overlaps tests that mostly
 * wait. A failure is only reported here: the lab file that needs the image builds it again and
 * fails with the cause.
 */
import { ensureBerthImage } from './berth-image.js';
import { requireLab } from './lab.js';

const t0 = Date.now();
try {
  const built = await ensureBerthImage(requireLab(), (s) => console.log(s));
  console.log(`prebuilt ${built.ref} in ${((Date.now() - t0) / 1000).toFixed(0)} s${built.buildSeconds === 0 ? ' (the registry had it)' : ''}`);
} catch (err) {
  console.error(`prebuilding berth's test image failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
