import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { parse } from 'yaml';
import { createMetrics } from '../../src/metrics/registry.js';
import { createProxyMetrics } from '../../src/routing/proxy-metrics.js';

/** Every berth_* series name berth exports (histograms with their _bucket/_sum/_count). */
async function exported(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const registry of [createMetrics().registry, createProxyMetrics().registry]) {
    for (const m of await registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    }
  }
  return names;
}

const used = (exprs: string[]) => [...new Set(exprs.flatMap((e) => e.match(/\bberth_[a-z_]+/g) ?? []))];

test('every metric the Grafana dashboard queries is one berth exports', async () => {
  const dash = JSON.parse(fs.readFileSync('deploy/grafana/berth.json', 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
  assert.ok(exprs.length >= 10);
  const names = await exported();
  assert.deepEqual(used(exprs).filter((n) => !names.has(n)), []);
});

test('every metric the alert rules use is one berth exports', async () => {
  const rules = parse(fs.readFileSync('deploy/prometheus/berth-alerts.yml', 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  const exprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
  const names = await exported();
  assert.deepEqual(used(exprs).filter((n) => !names.has(n)).sort(), []);
});
