import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLab } from '../../src/lab/plan.js';
import { dockerdArgv } from '../../src/lab/dockerd.js';
import { etcdArgv } from '../../src/lab/etcd.js';
import { registryArgv, registryConfig } from '../../src/lab/registry.js';
import { bridgeArgvs, nodeNetArgvs, forwardRule } from '../../src/lab/net.js';
import { nginxMainConf, nginxReloadArgv, nginxCheckArgv } from '../../src/lab/nginx.js';
import { importChanges, rootfsFiles, imageRef } from '../../src/lab/images.js';
import { missingPackages, installCommand } from '../../src/lab/packages.js';
import { shellQuote, closeFdsArgv } from '../../src/lab/exec.js';

const plan = planLab({ stateDir: '/s', nodes: 3 });
const node2 = plan.nodes[1]!;

test('dockerd enters the node netns with nsenter (not ip netns exec), own UTS hostname, own paths, vfs, insecure lab registry', () => {
  const argv = dockerdArgv(plan, node2);
  assert.deepEqual(argv.slice(0, 8), ['nsenter', '--net=/var/run/netns/berth-lab-2', 'unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', 'lab-2']);
  const d = argv.slice(8);
  assert.equal(d[0], 'dockerd');
  const flag = (f: string) => d[d.indexOf(f) + 1];
  assert.equal(flag('--data-root'), '/s/nodes/lab-2/root');
  assert.equal(flag('--exec-root'), '/s/nodes/lab-2/exec');
  assert.equal(flag('-H'), 'unix:///s/nodes/lab-2/docker.sock');
  assert.equal(flag('--pidfile'), '/s/nodes/lab-2/docker.pid');
  assert.equal(flag('--storage-driver'), 'vfs');
  assert.equal(flag('--insecure-registry'), '10.77.0.1:5000');
  assert.ok(!argv.includes('ip'));
});

test('etcd listens on loopback and the lab bridge only (for containers on the nodes), data in the state dir', () => {
  const argv = etcdArgv(plan);
  assert.equal(argv[argv.indexOf('--listen-client-urls') + 1], 'http://127.0.0.1:2379,http://10.77.0.1:2379');
  assert.equal(argv[argv.indexOf('--data-dir') + 1], '/s/etcd/data');
});

test('registry serves on the bridge address with filesystem storage in the state dir', () => {
  assert.deepEqual(registryArgv(plan), ['docker-registry', 'serve', '/s/registry/config.yml']);
  const cfg = registryConfig(plan);
  assert.match(cfg, /addr: 10\.77\.0\.1:5000/);
  assert.match(cfg, /rootdirectory: \/s\/registry\/data/);
});

test('network argv: bridge with host address, veth into netns with node address', () => {
  assert.deepEqual(bridgeArgvs(plan)[1], ['ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'berth0']);
  const n = nodeNetArgvs(plan, node2);
  assert.deepEqual(n[0], ['ip', 'netns', 'add', 'berth-lab-2']);
  assert.deepEqual(n[3], ['ip', '-n', 'berth-lab-2', 'addr', 'add', '10.77.0.12/24', 'dev', 'bveth2n']);
  assert.deepEqual(n[6], ['ip', 'link', 'set', 'bveth2', 'master', 'berth0']);
  assert.deepEqual(forwardRule('berth0').slice(0, 7), ['FORWARD', '-i', 'berth0', '-o', 'berth0', '-j', 'ACCEPT']);
});

test('nginx: own pid, logs, temp paths, daemon on, includes the upstreams file, default server answers 404', () => {
  const conf = nginxMainConf(plan);
  assert.match(conf, /^daemon on;$/m);
  assert.match(conf, /^pid \/s\/nginx\/nginx\.pid;$/m);
  assert.match(conf, /include \/s\/nginx\/upstreams\.conf;/);
  assert.match(conf, /listen 127\.0\.0\.1:8080 default_server;/);
  assert.match(conf, /return 404/);
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) assert.match(conf, new RegExp(`${t}_temp_path /s/nginx/tmp/`));
  assert.deepEqual(nginxReloadArgv(plan).slice(-2), ['-s', 'reload']);
  assert.equal(nginxCheckArgv(plan).at(-1), '-t');
});

test('images: v1/v2 serve their version and /healthz on 8080; broken serves neither and listens on 8081', () => {
  assert.equal(imageRef(plan, 'v2'), '10.77.0.1:5000/web:v2');
  assert.equal(rootfsFiles('v1')['www/index.html'], 'v1');
  assert.equal(rootfsFiles('v2')['www/index.html'], 'v2');
  assert.ok(rootfsFiles('v2')['www/healthz']);
  assert.equal(rootfsFiles('broken')['www/index.html'], undefined);
  assert.equal(rootfsFiles('broken')['www/healthz'], undefined);
  assert.ok(importChanges('v1').includes('CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]'));
  assert.ok(importChanges('broken').some((c) => c.includes('"8081"')));
  assert.ok(importChanges('v1').some((c) => c.startsWith('HEALTHCHECK ') && c.includes('/healthz')));
});

test('packages: names what is missing and the exact install command', () => {
  assert.deepEqual(missingPackages(() => true), []);
  assert.deepEqual(missingPackages((b) => b !== 'etcd' && b !== 'nginx'), ['etcd-server', 'nginx']);
  assert.equal(installCommand(['nginx']), 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx');
});

test('shell quoting', () => {
  assert.equal(shellQuote('/a/b.conf'), '/a/b.conf');
  assert.equal(shellQuote('a b'), "'a b'");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
});

test('daemons start through a bash exec that closes inherited descriptors above 2', () => {
  const argv = closeFdsArgv(['etcd', '--name', 'x']);
  assert.deepEqual(argv.slice(0, 2), ['bash', '-c']);
  assert.match(argv[2]!, /exec \{n\}>&-/);
  assert.deepEqual(argv.slice(-3), ['etcd', '--name', 'x']);
});
