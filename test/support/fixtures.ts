import type { Environment, EnvironmentGroup } from '../../src/api/index.js';
import { parseResource } from '../../src/api/resource.js';

export function group(name = 'qa-pool', spare = 0): EnvironmentGroup {
  return parseResource({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'EnvironmentGroup',
    metadata: { name },
    spec: { nodeSelector: { pool: 'qa' }, spare },
  }) as EnvironmentGroup;
}

export function env(name = 'qa-1', opts: { nodes?: number; image?: string; group?: string; labels?: Record<string, string> } = {}): Environment {
  return parseResource({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name, ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: {
      group: opts.group ?? 'qa-pool',
      nodes: opts.nodes ?? 1,
      services: { api: { image: opts.image ?? 'registry:5000/web:v1', ports: [{ target: 8080 }] } },
    },
  }) as Environment;
}
