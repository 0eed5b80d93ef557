/** Invalid documents and the exact field path `berth apply` must name for each. */
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function validGroupDoc(): Doc {
  return { apiVersion: 'berth.dev/v1alpha1', kind: 'EnvironmentGroup', metadata: { name: 'qa-pool' }, spec: { nodeSelector: { pool: 'qa' }, spare: 0 } };
}

export function validEnvDoc(): Doc {
  return {
    apiVersion: 'berth.dev/v1alpha1',
    kind: 'Environment',
    metadata: { name: 'qa-1', labels: { team: 'api' } },
    spec: {
      group: 'qa-pool',
      nodes: 2,
      services: {
        api: {
          image: '10.77.0.1:5000/web:v2',
          replicas: 2,
          command: ['httpd', '-f'],
          environment: { LOG_LEVEL: 'info' },
          ports: [{ target: 8080 }],
          healthcheck: { test: ['CMD', 'true'], interval: '2s', retries: 3 },
          placement: { maxPerNode: 1, spreadBy: 'node.labels.zone', constraints: ['node.labels.disk==ssd'] },
          strategy: { type: 'blueGreen', drain: '10s', autoPromote: true },
          route: { upstream: 'qa-1-api', port: 8080 },
        },
      },
    },
  };
}

export interface InvalidCase {
  name: string;
  doc: unknown;
  path: string;
}

const env = (edit: (d: Doc) => void): Doc => {
  const d = validEnvDoc();
  edit(d);
  return d;
};
const grp = (edit: (d: Doc) => void): Doc => {
  const d = validGroupDoc();
  edit(d);
  return d;
};
const api = (d: Doc): Doc => d.spec.services.api;

export const INVALID_CASES: InvalidCase[] = [
  { name: 'not a mapping', doc: ['a', 'b'], path: '(document)' },
  { name: 'scalar document', doc: 'hello', path: '(document)' },
  { name: 'wrong apiVersion', doc: env((d) => (d.apiVersion = 'berth.dev/v1')), path: 'apiVersion' },
  { name: 'missing apiVersion', doc: env((d) => delete d.apiVersion), path: 'apiVersion' },
  { name: 'unknown kind', doc: env((d) => (d.kind = 'Deployment')), path: 'kind' },
  { name: 'unknown top-level field', doc: env((d) => (d.status = {})), path: 'status' },
  { name: 'missing metadata', doc: env((d) => delete d.metadata), path: 'metadata' },
  { name: 'missing name', doc: env((d) => delete d.metadata.name), path: 'metadata.name' },
  { name: 'upper-case name', doc: env((d) => (d.metadata.name = 'QA-1')), path: 'metadata.name' },
  { name: 'name too long', doc: env((d) => (d.metadata.name = 'a'.repeat(41))), path: 'metadata.name' },
  { name: 'name ending in -', doc: grp((d) => (d.metadata.name = 'pool-')), path: 'metadata.name' },
  { name: 'bad label key', doc: env((d) => (d.metadata.labels = { 'te am': 'x' })), path: 'metadata.labels.te am' },
  { name: 'bad label value', doc: env((d) => (d.metadata.labels = { team: 'a b' })), path: 'metadata.labels.team' },
  { name: 'unknown metadata field', doc: env((d) => (d.metadata.namespace = 'x')), path: 'metadata.namespace' },
  { name: 'missing spec', doc: env((d) => delete d.spec), path: 'spec' },
  { name: 'group: empty selector', doc: grp((d) => (d.spec.nodeSelector = {})), path: 'spec.nodeSelector' },
  { name: 'group: berth.* selector', doc: grp((d) => (d.spec.nodeSelector = { 'berth.env': 'x' })), path: 'spec.nodeSelector' },
  { name: 'group: negative spare', doc: grp((d) => (d.spec.spare = -1)), path: 'spec.spare' },
  { name: 'group: fractional spare', doc: grp((d) => (d.spec.spare = 1.5)), path: 'spec.spare' },
  { name: 'group: unknown spec field', doc: grp((d) => (d.spec.nodes = 3)), path: 'spec.nodes' },
  { name: 'group: selector value type', doc: grp((d) => (d.spec.nodeSelector = { pool: 5 })), path: 'spec.nodeSelector.pool' },
  { name: 'missing group', doc: env((d) => delete d.spec.group), path: 'spec.group' },
  { name: 'invalid group name', doc: env((d) => (d.spec.group = 'Pool_1')), path: 'spec.group' },
  { name: 'missing nodes', doc: env((d) => delete d.spec.nodes), path: 'spec.nodes' },
  { name: 'negative nodes', doc: env((d) => (d.spec.nodes = -2)), path: 'spec.nodes' },
  { name: 'nodes as string', doc: env((d) => (d.spec.nodes = 'two')), path: 'spec.nodes' },
  { name: 'ttl without unit', doc: env((d) => (d.spec.ttl = '48')), path: 'spec.ttl' },
  { name: 'ttl too long', doc: env((d) => (d.spec.ttl = '400d')), path: 'spec.ttl' },
  { name: 'unknown spec field', doc: env((d) => (d.spec.replicas = 2)), path: 'spec.replicas' },
  { name: 'bad service name', doc: env((d) => (d.spec.services = { API_1: api(d) })), path: 'spec.services.API_1' },
  { name: 'missing image', doc: env((d) => delete api(d).image), path: 'spec.services.api.image' },
  { name: 'bad image', doc: env((d) => (api(d).image = 'Web Server:latest')), path: 'spec.services.api.image' },
  { name: 'negative replicas', doc: env((d) => (api(d).replicas = -1)), path: 'spec.services.api.replicas' },
  { name: 'too many replicas', doc: env((d) => (api(d).replicas = 5000)), path: 'spec.services.api.replicas' },
  { name: 'command not a list', doc: env((d) => (api(d).command = 'httpd -f')), path: 'spec.services.api.command' },
  { name: 'command entry not a string', doc: env((d) => (api(d).command = ['httpd', 5])), path: 'spec.services.api.command[1]' },
  { name: 'bad env var name', doc: env((d) => (api(d).environment = { '1BAD': 'x' })), path: 'spec.services.api.environment.1BAD' },
  { name: 'env var value object', doc: env((d) => (api(d).environment = { GOOD: { a: 1 } })), path: 'spec.services.api.environment.GOOD' },
  { name: 'port out of range', doc: env((d) => (api(d).ports = [{ target: 70000 }])), path: 'spec.services.api.ports[0].target' },
  { name: 'published port zero', doc: env((d) => (api(d).ports = [{ target: 8080, published: 0 }])), path: 'spec.services.api.ports[0].published' },
  { name: 'bad protocol', doc: env((d) => (api(d).ports = [{ target: 8080, protocol: 'sctp' }])), path: 'spec.services.api.ports[0].protocol' },
  { name: 'unknown port field', doc: env((d) => (api(d).ports = [{ target: 8080, mode: 'host' }])), path: 'spec.services.api.ports[0].mode' },
  { name: 'duplicate published ports', doc: env((d) => (api(d).ports = [{ target: 8080, published: 80 }, { target: 8081, published: 80 }])), path: 'spec.services.api.ports' },
  { name: 'healthcheck test not CMD', doc: env((d) => (api(d).healthcheck.test = ['wget', 'x'])), path: 'spec.services.api.healthcheck.test' },
  { name: 'healthcheck bad interval', doc: env((d) => (api(d).healthcheck.interval = 'fast')), path: 'spec.services.api.healthcheck.interval' },
  { name: 'healthcheck negative retries', doc: env((d) => (api(d).healthcheck.retries = -1)), path: 'spec.services.api.healthcheck.retries' },
  { name: 'maxPerNode zero', doc: env((d) => (api(d).placement.maxPerNode = 0)), path: 'spec.services.api.placement.maxPerNode' },
  { name: 'spreadBy not a node label', doc: env((d) => (api(d).placement.spreadBy = 'zone')), path: 'spec.services.api.placement.spreadBy' },
  { name: 'bad constraint', doc: env((d) => (api(d).placement.constraints = ['disk=ssd'])), path: 'spec.services.api.placement.constraints[0]' },
  { name: 'berth.* constraint', doc: env((d) => (api(d).placement.constraints = ['node.labels.berth.env==x'])), path: 'spec.services.api.placement.constraints[0]' },
  { name: 'unknown strategy type', doc: env((d) => (api(d).strategy.type = 'canary')), path: 'spec.services.api.strategy.type' },
  { name: 'drain too long', doc: env((d) => (api(d).strategy.drain = '2h')), path: 'spec.services.api.strategy.drain' },
  { name: 'autoPromote as string', doc: env((d) => (api(d).strategy.autoPromote = 'yes')), path: 'spec.services.api.strategy.autoPromote' },
  { name: 'route port not declared', doc: env((d) => (api(d).route.port = 9090)), path: 'spec.services.api.route.port' },
  { name: 'route without ports', doc: env((d) => (api(d).ports = [])), path: 'spec.services.api.route' },
  {
    name: 'blue-green without a port to route',
    doc: env((d) => {
      api(d).ports = [];
      delete api(d).route;
    }),
    path: 'spec.services.api.strategy.type',
  },
  { name: 'bad upstream name', doc: env((d) => (api(d).route.upstream = 'qa 1;')), path: 'spec.services.api.route.upstream' },
  { name: 'unknown service field', doc: env((d) => (api(d).volumes = [])), path: 'spec.services.api.volumes' },
  {
    name: 'service name too long for Swarm',
    doc: env((d) => {
      d.metadata.name = 'a'.repeat(30);
      d.spec.services = { ['b'.repeat(30)]: { image: 'web:v1' } };
    }),
    path: `spec.services.${'b'.repeat(30)}`,
  },
  {
    name: 'two services share an upstream',
    doc: env((d) => (d.spec.services.web = { image: 'web:v1', ports: [{ target: 80 }], route: { upstream: 'qa-1-api' } })),
    path: 'spec.services.web.route.upstream',
  },
];
