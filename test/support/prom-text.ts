/** A Prometheus text exposition read into `series → value` (`name{labels}` as the key). */
export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** The sum of every series of metric `name` whose key contains `filter` (a label, say). */
export function metricTotal(m: Map<string, number>, name: string, filter = ''): number {
  let total = 0;
  for (const [k, v] of m) if ((k === name || k.startsWith(`${name}{`)) && k.includes(filter)) total += v;
  return total;
}
