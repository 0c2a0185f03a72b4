/**
 * The load balancers' configs in deploy/: rendered for three nodes they are accepted by the real binaries
 * (`haproxy -c`, `kamailio -c`), every node appears once in each, and a placeholder left without a value is an error
 * naming it (a config with a hole is never written). `cluster up` refuses a bad --nodes or port before starting anything.
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
  // a loaded node's slow answer is not a death (3 s, three strikes); a refused connection takes a node out at once
  assert.match(text, /default-server check inter 1s fastinter 300ms fall 3 rise 2 observe layer4 error-limit 1 on-error mark-down/);
  assert.match(text, /^\s+timeout check 3s$/m);
  assert.match(text, /^\s+balance leastconn$/m);
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

test('cluster up: a bad --nodes or port is a usage error (exit 2) and starts nothing', () => {
  const bin = path.join(import.meta.dirname, '..', '..', '..', 'bin', 'switchboard.mjs');
  for (const [args, message] of [
    [['--nodes', '0'], /--nodes: expected a whole number from 1 to 16/],
    [['--nodes', 'two'], /--nodes: expected a whole number/],
    [['--http-port', '70000'], /--http-port: expected a port 0–65535/],
    [['--host', '0.0.0.0'], /--host: the address callers reach/],
  ] as const) {
    const dir = tmpDir('sb-clbad-');
    const r = spawnSync(process.execPath, [bin, 'cluster', 'up', '--dir', dir, ...args], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message);
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing created');
  }
});
