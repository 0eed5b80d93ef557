// The image's HEALTHCHECK: exit 0 when BERTH_HEALTH_URL (the process's /healthz) answers 200.
// Plain node: the image has neither curl nor wget.
const url = process.argv[2] ?? process.env.BERTH_HEALTH_URL ?? 'http://127.0.0.1:9464/healthz';
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4_000) });
  process.exitCode = res.status === 200 ? 0 : 1;
} catch {
  process.exitCode = 1;
}
