import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLab, validateCounts, zoneFor, nodeIp, stateDirFromEnv, DEFAULT_STATE_DIR } from '../../src/lab/plan.js';
import { authRegistryConfig, dockerConfigJson } from '../../src/lab/auth-registry.js';
import { labEnv, formatEnv, LAB_ENV_KEYS } from '../../src/lab/env.js';
import { etcdArgv } from '../../src/lab/etcd.js';

test('default plan: 3 nodes, 1 manager, addresses .11-.13 on berth0 10.77.0.1/24', () => {
  const p = planLab({ stateDir: '/s' });
  assert.equal(p.bridge, 'berth0');
  assert.equal(p.hostIp, '10.77.0.1');
  assert.deepEqual(p.nodes.map((n) => n.ip), ['10.77.0.11', '10.77.0.12', '10.77.0.13']);
  assert.deepEqual(p.nodes.map((n) => n.hostname), ['lab-1', 'lab-2', 'lab-3']);
  assert.deepEqual(p.nodes.map((n) => n.role), ['manager', 'worker', 'worker']);
  assert.equal(p.nodes[0]!.socket, '/s/nodes/lab-1/docker.sock');
  assert.equal(p.registry.addr, '10.77.0.1:5000');
  assert.equal(p.etcd.clientUrl, 'http://127.0.0.1:2379');
  assert.equal(p.nginx.listen, '127.0.0.1:8080');
});

test('managers are nodes 1..M; zones go round-robin a, b, c', () => {
  const p = planLab({ stateDir: '/s', nodes: 5, managers: 3 });
  assert.deepEqual(p.nodes.map((n) => n.role), ['manager', 'manager', 'manager', 'worker', 'worker']);
  assert.deepEqual(p.nodes.map((n) => n.zone), ['a', 'b', 'c', 'a', 'b']);
  assert.equal(zoneFor(7), 'a');
  assert.equal(nodeIp(20), '10.77.0.30');
});

test('interface names fit the kernel limit of 15 characters', () => {
  for (const n of planLab({ stateDir: '/s', nodes: 20, managers: 1 }).nodes) {
    assert.ok(n.vethHost.length <= 15 && n.vethNode.length <= 15, n.vethNode);
  }
});

test('bad counts are refused', () => {
  assert.match(validateCounts(0, 1)!, /--nodes/);
  assert.match(validateCounts(21, 1)!, /--nodes/);
  assert.match(validateCounts(3, 4)!, /--managers/);
  assert.match(validateCounts(3, 0)!, /--managers/);
  assert.equal(validateCounts(3, 3), undefined);
  assert.throws(() => planLab({ nodes: 2, managers: 3 }), RangeError);
});

test('state dir comes from BERTH_LAB_DIR', () => {
  assert.equal(stateDirFromEnv({}), DEFAULT_STATE_DIR);
  assert.equal(stateDirFromEnv({ BERTH_LAB_DIR: '/x' }), '/x');
});

test('lab env: every key, manager socket as DOCKER_HOST, node lists in order, shell-quoted', () => {
  const p = planLab({ stateDir: '/s', nodes: 2 });
  const env = labEnv(p);
  assert.equal(env.DOCKER_HOST, 'unix:///s/nodes/lab-1/docker.sock');
  assert.equal(env.BERTH_LAB_NODES, '10.77.0.11,10.77.0.12');
  assert.equal(env.BERTH_LAB_NODE_SOCKETS, 'unix:///s/nodes/lab-1/docker.sock,unix:///s/nodes/lab-2/docker.sock');
  assert.equal(env.BERTH_NGINX_CONF, '/s/nginx/upstreams.conf');
  assert.equal(env.BERTH_NGINX_MAIN_CONF, '/s/nginx/nginx.conf');
  assert.equal(env.BERTH_NGINX_RELOAD_CMD, 'nginx -p /s/nginx/ -e /s/nginx/error.log -c /s/nginx/nginx.conf -s reload');
  assert.equal(env.BERTH_NGINX_CHECK_CMD, 'nginx -p /s/nginx/ -e /s/nginx/error.log -c /s/nginx/nginx.conf -t');
  const text = formatEnv(env);
  assert.equal(text.trim().split('\n').length, LAB_ENV_KEYS.length);
  assert.match(text, /^export BERTH_NGINX_RELOAD_CMD='nginx -p .* reload'$/m);
  assert.match(text, /^export BERTH_ETCD_ENDPOINTS=http:\/\/127\.0\.0\.1:2379$/m);
});

test('lab etcd also listens on the bridge address, which the lab env names for containers on the nodes', () => {
  const p = planLab({ stateDir: '/s' });
  const argv = etcdArgv(p);
  assert.equal(argv[argv.indexOf('--listen-client-urls') + 1], 'http://127.0.0.1:2379,http://10.77.0.1:2379');
  assert.equal(labEnv(p).BERTH_LAB_ETCD_FROM_NODES, 'http://10.77.0.1:2379');
});

test('the registry with auth serves the lab storage read-only over TLS with htpasswd; the lab env names it, its login and its CA', () => {
  const p = planLab({ stateDir: '/s' });
  const config = authRegistryConfig(p);
  assert.match(config, /rootdirectory: \/s\/registry\/data$/m);
  assert.match(config, /readonly:\n {6}enabled: true/);
  assert.match(config, /addr: 10\.77\.0\.1:5443\n {2}tls:\n {4}certificate: \/s\/auth-registry\/server\.crt\n {4}key: \/s\/auth-registry\/server\.key/);
  assert.match(config, /htpasswd:\n {4}realm: berth-lab\n {4}path: \/s\/auth-registry\/htpasswd/);
  assert.equal(p.authRegistry.dockerCa, '/etc/docker/certs.d/10.77.0.1:5443/ca.crt');
  const env = labEnv(p);
  assert.equal(env.BERTH_LAB_AUTH_REGISTRY, '10.77.0.1:5443');
  assert.equal(env.BERTH_LAB_AUTH_REGISTRY_CONFIG, '/s/auth-registry/docker-config.json');
  assert.equal(env.BERTH_LAB_AUTH_REGISTRY_CA, '/s/auth-registry/ca.crt');
  assert.equal(env.BERTH_INSECURE_REGISTRIES, '10.77.0.1:5000', 'the registry with auth is not spoken to over http');
  const login = JSON.parse(dockerConfigJson('10.77.0.1:5443', 'u', 'p w')) as { auths: Record<string, { auth: string }> };
  assert.equal(Buffer.from(login.auths['10.77.0.1:5443']!.auth, 'base64').toString(), 'u:p w');
});
