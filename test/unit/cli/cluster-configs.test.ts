/**
 * The load balancers' configs in deploy/: rendered for three nodes they are accepted by the real binaries
 * (`haproxy -c`, `kamailio -c`), every node appears once in each, and a placeholder left without a value is an error
 * naming it (a config with a hole is never written).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { dispatcherList, render, renderHaproxy, renderKamailio, type Backend } from '../../../cli/cluster/balancers.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const NODES: Backend[] = [
  { id: 'node-1', host: '127.0.0.1', httpPort: 18081, sipPort: 15071 },
  { id: 'node-2', host: '127.0.0.1', httpPort: 18082, sipPort: 15072 },
  { id: 'node-3', host: '10.0.0.3', httpPort: 8080, sipPort: 5060 },
];

test('haproxy.cfg for three nodes: haproxy -c accepts it; each node is a checked server; /readyz is the check', () => {
  const dir = tmpDir('sb-lbcfg-');
  const text = renderHaproxy('127.0.0.1:18080', '127.0.0.1:18404', NODES);
  assert.doesNotMatch(text, /\{\{/);
  for (const n of NODES) assert.match(text, new RegExp(`^\\s+server ${n.id} ${n.host.replace(/\./g, '\\.')}:${n.httpPort}$`, 'm'));
  assert.match(text, /option httpchk GET \/readyz/);
  assert.match(text, /default-server check inter 300ms fall 2/);
  assert.match(text, /^\s+retries 3$/m);
  assert.match(text, /option redispatch/);
  assert.match(text, /timeout tunnel/);
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, text);
  const r = spawnSync('/usr/sbin/haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('kamailio.cfg and its dispatcher list for three nodes: kamailio -c accepts them; OPTIONS probing, record-route', () => {
  const dir = tmpDir('sb-lbcfg-');
  const list = path.join(dir, 'dispatcher.list');
  fs.writeFileSync(list, dispatcherList(NODES));
  assert.deepEqual(
    fs.readFileSync(list, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')),
    NODES.map((n) => `1 sip:${n.host}:${n.sipPort} 0 0 node=${n.id}`),
  );
  const text = renderKamailio('127.0.0.1', 15070, list);
  assert.doesNotMatch(text, /\{\{/);
  assert.match(text, /modparam\("dispatcher", "ds_ping_method", "OPTIONS"\)/);
  assert.match(text, /record_route\(\)/);
  assert.match(text, /loose_route\(\)/);
  const file = path.join(dir, 'kamailio.cfg');
  fs.writeFileSync(file, text);
  const r = spawnSync('/usr/sbin/kamailio', ['-c', '-f', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`.slice(-3000));
});

test('a placeholder without a value is an error naming it', () => {
  assert.equal(render('bind {{BIND}}\n', { BIND: '127.0.0.1:1' }), 'bind 127.0.0.1:1\n');
  assert.throws(() => render('bind {{BIND}} {{SERVERS}} {{X_Y}}', { BIND: 'a' }), /placeholders without a value: SERVERS, X_Y/);
});
