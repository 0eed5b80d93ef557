/*
 * Docker's `filters` query parameter: JSON of key → values, either as a list
 * (`{"label":["a=b"]}`, what dockerode sends) or as a set (`{"label":{"a=b":true}}`, what the
 * docker CLI sends). Different keys must all match; values of one key are alternatives, except
 * `label`, where every value must match.
 */

export type Filters = ReadonlyMap<string, readonly string[]>;

export class FilterError extends Error {}

export function parseFilters(raw: string | null, accepted: readonly string[]): Filters {
  const out = new Map<string, string[]>();
  if (!raw) return out;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new FilterError(`invalid filter: ${raw}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new FilterError(`invalid filter: ${raw}`);
  for (const [key, values] of Object.entries(parsed as Record<string, unknown>)) {
    if (!accepted.includes(key)) throw new FilterError(`invalid filter '${key}'`);
    const list = Array.isArray(values)
      ? values.map(String)
      : values && typeof values === 'object'
        ? Object.entries(values as Record<string, unknown>).filter(([, on]) => on).map(([v]) => v)
        : [String(values)];
    if (list.length) out.set(key, list);
  }
  return out;
}

/** True when the key is not filtered, or one of its values equals `value`. */
export function exact(f: Filters, key: string, value: string | undefined): boolean {
  const want = f.get(key);
  return !want || (value !== undefined && want.includes(value));
}

/** True when the key is not filtered, or `value` starts with one of its values (ids, names). */
export function prefix(f: Filters, key: string, ...values: (string | undefined)[]): boolean {
  const want = f.get(key);
  return !want || want.some((w) => values.some((v) => v !== undefined && v.startsWith(w)));
}

/** Every `k` (present) and `k=v` (equal) of the key must hold on the labels. */
export function labels(f: Filters, key: string, actual: Readonly<Record<string, string>>): boolean {
  const want = f.get(key);
  if (!want) return true;
  return want.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return Object.hasOwn(actual, w);
    return actual[w.slice(0, eq)] === w.slice(eq + 1);
  });
}
