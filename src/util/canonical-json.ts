/**
 * JSON with object keys sorted by code unit at every depth and `undefined` properties left out,
 * so two equal values always give the same text. Written out by hand rather than through a
 * `JSON.stringify` replacer: a rebuilt object would list integer-like keys ("2", "10") first
 * whatever the sort, and this text is hashed into labels of running services (specHash), so
 * it must never change for the same value.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
