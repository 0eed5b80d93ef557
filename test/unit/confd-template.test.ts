import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderNginx } from '../../src/routing/nginx-render.js';
import { decodeRoutes } from '../../src/store/routes.js';

/**
 * berth proxy and deploy/confd must render the same file for the same keys. confd is not
 * installable here, so deploy/confd/testdata/expected.conf was written by hand-evaluating
 * templates/berth-upstreams.tmpl (memkv: lsdir/getvs sort their results) over testdata/keys.json.
 */
const dir = new URL('../../deploy/confd/', import.meta.url);

test('berth proxy renders the committed confd fixture exactly as the confd template does', () => {
  const keys = JSON.parse(readFileSync(new URL('testdata/keys.json', dir), 'utf8')) as Record<string, string>;
  const invalid: string[] = [];
  const routes = decodeRoutes('/berth/routes', Object.entries(keys), (k) => invalid.push(k));
  assert.deepEqual(invalid, []);
  const expected = readFileSync(new URL('testdata/expected.conf', dir), 'utf8');
  assert.equal(renderNginx(routes, { listen: '127.0.0.1:8080' }), expected);
});

test('the confd template and resource use the same prefix, check and reload as berth proxy', () => {
  const tmpl = readFileSync(new URL('templates/berth-upstreams.tmpl', dir), 'utf8');
  const toml = readFileSync(new URL('conf.d/berth-upstreams.toml', dir), 'utf8');
  assert.match(tmpl, /\$root := "\/berth\/routes"/);
  assert.match(toml, /keys = \[\s*"\/berth\/routes",\s*\]/);
  assert.match(toml, /check_cmd = "nginx -t"/);
  assert.match(toml, /reload_cmd = "nginx -s reload"/);
  // The empty-servers guard: never an upstream block without servers.
  assert.match(tmpl, /\{\{if \$hasServers\}\}upstream/);
});
