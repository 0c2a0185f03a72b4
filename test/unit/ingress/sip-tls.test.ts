/**
 * SIP over TLS settings and the encryption policy, without sockets: the TLS files are checked at start with one
 * error naming the variable at fault (cert, key, a key of another certificate, CA), the configuration refuses a
 * half-set pair, SWITCHBOARD_SIP_ENCRYPTION and an outbound route's `transport`/`encryption` parse as documented
 * (strictest matching rule wins), the first hop of an outbound INVITE takes TLS when the target or the route asks;
 * and the calls table of a database made before `transport`/`media_encryption` existed gets them (null) in place,
 * with a replay of its log building the same rows.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { test } from 'node:test';
import { loadConfig } from '../../../cli/config/index.ts';
import { EncryptionPolicies, EncryptionPolicyError } from '../../../ingress/sip/encryption-policy.ts';
import { parseSipUri } from '../../../ingress/sip/headers.ts';
import { OutboundConfig, OutboundConfigError, outboundHop } from '../../../ingress/sip/outbound-config.ts';
import { loadTlsMaterial, SipTlsError } from '../../../ingress/sip/tls.ts';
import { call_received, call_security_recorded } from '../../../schema/reducers.ts';
import { DB_FILE } from '../../../store/index.ts';
import { selfSigned } from '../../helpers/sip-tls-ua.ts';
import { openTestStore, resultOf } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';

test('TLS files: a bad one at start is one error naming its variable', () => {
  const dir = tmpDir('sb-tls-files-');
  const a = selfSigned(dir, 'a');
  const b = selfSigned(dir, 'b');
  const junk = path.join(dir, 'junk.pem');
  fs.writeFileSync(junk, 'not pem');
  assert.ok(loadTlsMaterial({ certFile: a.cert, keyFile: a.key }).cert.length > 0);
  const cases: Array<[Parameters<typeof loadTlsMaterial>[0], RegExp]> = [
    [{ certFile: path.join(dir, 'missing.crt'), keyFile: a.key }, /^SWITCHBOARD_SIP_TLS_CERT: cannot read .*missing\.crt/],
    [{ certFile: junk, keyFile: a.key }, /^SWITCHBOARD_SIP_TLS_CERT: .*junk\.pem is not a PEM certificate/],
    [{ certFile: a.cert, keyFile: junk }, /^SWITCHBOARD_SIP_TLS_KEY: .*junk\.pem is not a PEM private key/],
    [{ certFile: a.cert, keyFile: b.key }, /^SWITCHBOARD_SIP_TLS_KEY: .*b\.key is not the key of the certificate in .*a\.crt/],
    [{ certFile: a.cert, keyFile: a.key, caFile: junk }, /^SWITCHBOARD_SIP_TLS_CA: .*junk\.pem is not a PEM certificate bundle/],
  ];
  for (const [files, re] of cases) assert.throws(() => loadTlsMaterial(files), (err: unknown) => err instanceof SipTlsError && re.test(err.message), re.source);
});

test('TLS configuration: unset = no listener; a certificate without its key (or the reverse, or a CA alone) stops the start', () => {
  assert.equal(loadConfig({}).sip.tls, undefined);
  assert.deepEqual(loadConfig({ SWITCHBOARD_SIP_TLS_CERT: '/c.pem', SWITCHBOARD_SIP_TLS_KEY: '/k.pem' }).sip.tls, { port: 5061, certFile: '/c.pem', keyFile: '/k.pem', caFile: undefined });
  assert.throws(() => loadConfig({ SWITCHBOARD_SIP_TLS_CERT: '/c.pem' }), /SWITCHBOARD_SIP_TLS_KEY: must be set with SWITCHBOARD_SIP_TLS_CERT/);
  assert.throws(() => loadConfig({ SWITCHBOARD_SIP_TLS_KEY: '/k.pem' }), /SWITCHBOARD_SIP_TLS_CERT: must be set with SWITCHBOARD_SIP_TLS_KEY/);
  assert.throws(() => loadConfig({ SWITCHBOARD_SIP_TLS_CA: '/ca.pem' }), /SWITCHBOARD_SIP_TLS_CA: is set but/);
  assert.throws(() => loadConfig({ SWITCHBOARD_SIP_ENCRYPTION: '*=always' }), /SWITCHBOARD_SIP_ENCRYPTION \*: "always" must be LEVEL/);
});

test('SWITCHBOARD_SIP_ENCRYPTION: one level for all; rules by source CIDR and number, the strictest half by half', () => {
  assert.deepEqual(EncryptionPolicies.parse(undefined).forInbound({ source: '10.0.0.1', number: '+1' }), { tls: 'allow', srtp: 'allow' });
  assert.deepEqual(EncryptionPolicies.parse('require').forInbound({ source: '10.0.0.1', number: '+1' }), { tls: 'require', srtp: 'require' });
  const p = EncryptionPolicies.parse('*=allow, 10.20.0.0/16=require/prefer, +15550100=prefer/require, 2001:db8::/32=prefer');
  assert.deepEqual(p.forInbound({ source: '10.20.3.4', number: '+15559999' }), { tls: 'require', srtp: 'prefer' });
  assert.deepEqual(p.forInbound({ source: '10.20.3.4', number: '+15550100' }), { tls: 'require', srtp: 'require' });
  assert.deepEqual(p.forInbound({ source: '192.0.2.1', number: '+15550100' }), { tls: 'prefer', srtp: 'require' });
  assert.deepEqual(p.forInbound({ source: '2001:db8::5', number: '+1' }), { tls: 'prefer', srtp: 'prefer' });
  assert.equal(p.srtpFor({ source: '192.0.2.1', number: '+1' }), 'allow');
  for (const bad of ['sometimes', '*=require/allow/prefer', '=require', '10.0.0.0/99=require']) assert.throws(() => EncryptionPolicies.parse(bad), EncryptionPolicyError, bad);
});

test('outbound routes: transport and encryption; TLS chosen by sips:, ;transport=tls, the route, or its policy', () => {
  const cfg = OutboundConfig.parse({
    'carrier.example': { transport: 'tls' },
    'secure.example': { username: 'u', password: 'p', encryption: 'require/allow' },
    'proxied.example': { username: 'u', password: 'p', proxy: '10.0.0.5:5070;transport=tls' },
  });
  const hop = (uri: string) => outboundHop(parseSipUri(uri) ?? assert.fail(uri), cfg.routeFor(parseSipUri(uri)?.host ?? ''));
  assert.deepEqual(hop('sip:a@carrier.example'), { host: 'carrier.example', port: null, transport: 'tls' });
  assert.deepEqual(hop('sip:a@secure.example:5999'), { host: 'secure.example', port: 5999, transport: 'tls' });
  assert.deepEqual(hop('sip:a@proxied.example'), { host: '10.0.0.5', port: 5070, transport: 'tls' });
  assert.deepEqual(hop('sips:a@other.example'), { host: 'other.example', port: null, transport: 'tls' });
  assert.deepEqual(hop('sip:a@other.example;transport=tls'), { host: 'other.example', port: null, transport: 'tls' });
  assert.deepEqual(hop('sip:a@other.example;transport=tcp'), { host: 'other.example', port: null, transport: 'tcp' });
  assert.deepEqual(hop('sip:a@other.example'), { host: 'other.example', port: null, transport: 'udp' });
  assert.throws(() => OutboundConfig.parse({ 'x.example': { transport: 'udp', encryption: 'require' } }), (err: unknown) => err instanceof OutboundConfigError && /x\.example: encryption requires TLS but the route's transport is udp/.test(err.message));
  assert.throws(() => OutboundConfig.parse({ 'x.example': { encryption: 'maybe' } }), OutboundConfigError);
  assert.throws(() => OutboundConfig.parse({ 'x.example': { username: 'u' } }), /x\.example\.password: username and password go together/);
});

test('a database made before calls.transport/media_encryption gets them in place (older rows null); replay builds the same rows', async () => {
  const dir = tmpDir('sb-added-columns-');
  const who = { tenant: 'acme', caller: 'test' };
  let store = openTestStore({ dataDir: dir });
  const old = resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'sip', provider_call_id: 'old-1', from: 'sip:a@x', to: '+1' }, who));
  store.close();
  // The previous build's database: its calls table without the two columns.
  const db = new Database(path.join(dir, DB_FILE));
  db.exec('ALTER TABLE calls DROP COLUMN transport');
  db.exec('ALTER TABLE calls DROP COLUMN media_encryption');
  db.close();
  store = openTestStore({ dataDir: dir });
  try {
    const before = store.read('acme').calls.get(old.call_id);
    assert.deepEqual([before?.transport, before?.media_encryption], [null, null]);
    const fresh = resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'sip', provider_call_id: 'new-1', from: 'sip:a@x', to: '+1' }, who));
    resultOf(await store.submit(call_security_recorded, { call_id: fresh.call_id, transport: 'tls' }, who));
    const now = store.read('acme').calls.get(fresh.call_id);
    assert.deepEqual([now?.transport, now?.media_encryption], ['tls', 'none']);
    const report = store.replay();
    assert.ok(report.ok, JSON.stringify(report.tables.calls));
  } finally {
    store.close();
  }
});
