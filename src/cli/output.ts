import { stringify } from 'yaml';
import { UsageError } from './run.js';

export type OutputFormat = 'table' | 'wide' | 'yaml' | 'json';

export function parseOutputFormat(value: string | undefined): OutputFormat {
  if (value === undefined) return 'table';
  if (value === 'wide' || value === 'yaml' || value === 'json') return value;
  throw new UsageError(`unknown output format "${value}": use yaml, json or wide`);
}

/** A kubectl-style table: upper-case headers, columns padded to the widest cell plus 3 spaces. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd((widths[i] ?? 0) + 3)))
      .join('')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function formatData(value: unknown, format: 'yaml' | 'json'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) + '\n' : stringify(value);
}
