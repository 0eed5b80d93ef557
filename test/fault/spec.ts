/**
 * The environment the fault suites drive: `api` (rolling) and `web` (blue-green, autoPromote),
 * both the lab's web image (it answers its tag, `v1` or `v2`), on 1 or 2 nodes of the lab pool.
 * A `Shape` is what a spec change can move; `changesBetween` says which service updates a change
 * requires, for the update-count check.
 */
import type { Environment } from '../../src/api/index.js';
import { parseResource } from '../../src/api/resource.js';
import type { WebTag } from '../support/lab.js';

export type Version = Extract<WebTag, 'v1' | 'v2'>;

export interface Shape {
  nodes: number;
  api: { version: Version; replicas: number };
  web: { version: Version; replicas: number };
}

export const INITIAL: Shape = { nodes: 2, api: { version: 'v1', replicas: 1 }, web: { version: 'v1', replicas: 2 } };

export const flip = (v: Version): Version => (v === 'v1' ? 'v2' : 'v1');

const healthcheck = { test: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/healthz'], interval: '1s', timeout: '1s', retries: 3 };

export function environmentOf(env: string, group: string, shape: Shape, image: (v: Version) => string): Environment {
  return parseResource({
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: env },
    spec: {
      group,
      nodes: shape.nodes,
      services: {
        api: { image: image(shape.api.version), replicas: shape.api.replicas, ports: [{ target: 8080 }], healthcheck },
        web: {
          image: image(shape.web.version),
          replicas: shape.web.replicas,
          ports: [{ target: 8080 }],
          healthcheck,
          strategy: { type: 'blueGreen', drain: '2s', progressDeadline: '60s', autoPromote: true },
        },
      },
    },
  }) as Environment;
}

/**
 * The most Swarm service updates a change from `a` to `b` may cost, per berth service:
 * - api (rolling): one update when its image or replicas change;
 * - web (blue-green, both colours together): an image change updates the idle colour (or
 *   creates it: no update) and scales the old one to 0 after the drain, 2; a resize updates the
 *   live colour and, during a cutover, the waiting one, 2;
 * - a grown node claim may spread each service ("Growing spreads"): each task that moves is one
 *   replica more and back, 2 updates; the tasks that move are those the old nodes hold beyond an
 *   even share of the new ones.
 */
export function updatesAllowed(a: Shape, b: Shape): { api: number; web: number } {
  const spread = (before: number, after: number) => {
    if (b.nodes <= a.nodes) return 0;
    const r = Math.max(before, after);
    return 2 * Math.max(0, r - a.nodes * Math.min(Math.ceil(r / b.nodes), Math.floor(r / a.nodes)));
  };
  const api = (a.api.version !== b.api.version || a.api.replicas !== b.api.replicas ? 1 : 0) + spread(a.api.replicas, b.api.replicas);
  const web = (a.web.version !== b.web.version ? 2 : 0) + (a.web.replicas !== b.web.replicas ? 2 : 0) + spread(a.web.replicas, b.web.replicas);
  return { api, web };
}
