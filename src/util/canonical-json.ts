/**
 * JSON with object keys sorted by code unit at every depth and `undefined` properties left out,
 * so two equal values always give the same text. Written out by hand rather than through a
 * `JSON.stringify` replacer: a rebuilt object would list integer-like keys ("2", "10") first
 * whatever the sort, and this text is hashed into labels of running services (specHash), so
 * it must never change for the same value. Plain loops and `+=`: `berth apply` and every
 * reconcile run it on each spec, mostly before V8 has optimised it, where the entries / filter /
 * sort / map chain it replaced cost twice as much.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += canonicalJson(value[i]) ?? ''; // as Array.join writes what JSON cannot (undefined, a function)
    }
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).sort(); // the default sort compares strings by code unit
  let out = '{';
  for (const key of keys) {
    const v = object[key];
    if (v === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(key)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}
