/**
 * SIP over TLS end to end (in-process gateways, self-signed certificates made with openssl in the test):
 *  - a call over TLS (scripted UA on node:tls): 200 OK over the connection, Contact `;transport=tls`, Via TLS, the
 *    call row says transport `tls` and media `none`; BYE over the same connection; the evidence pack shows it;
 *  - the gateway's own BYE for a TLS call goes over the caller's connection;
 *  - a TLS 1.1 client is refused by the gateway (its protocol-version alert), the same client at 1.2 connects;
 *  - the certificate files replaced while running: the next handshake presents the new certificate; a broken file
 *    then is logged and the working certificate stays;
 *  - a cleartext (UDP) INVITE to a number whose policy requires TLS: 403 + Warning, no call row, one
 *    call_rejected (`tls_required`);
 *  - mutual TLS (SWITCHBOARD_SIP_TLS_CA): a client without a certificate gets no SIP at all, one with a
 *    certificate issued under the CA is answered;
 *  - an outbound call to a `;transport=tls` target (a TLS far end that asks for a client certificate): the INVITE
 *    goes over TLS with our certificate, the ACK and the far end's BYE on that connection, the row says `tls`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildEvidencePack } from '../../api/evidence/pack.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { fingerprintOf, issuedBy, selfSigned, SipTlsUa, TlsUas } from '../helpers/sip-tls-ua.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const SECURE = '+15554441111';
const OPEN = '+15554442222';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let mutualGw: Gw;
let dir: string;
let live: { cert: string; key: string };
let ca: { cert: string; key: string };
const closers: Array<() => void> = [];

async function gateway(env: Record<string, string>): Promise<Gw> {
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  const g = await startTestGateway({
    env: { SWITCHBOARD_SIP_PORT: String(await freePort()), SWITCHBOARD_SIP_TLS_PORT: '0', SWITCHBOARD_RTP_PORTS: `${low}-${low + 19}`, SWITCHBOARD_LOG_LEVEL: process.env.SB_TEST_LOG ?? 'silent', ...env },
  });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(await g.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 25_000, retries: 0 }, who));
  for (const n of [SECURE, OPEN]) resultOf(await g.store.submit(number_added, { number: n, agent: 'default', consent_policy_id: p.policy_id }, who));
  return g;
}

before(async () => {
  dir = tmpDir('sb-sip-tls-');
  const first = selfSigned(dir, 'gw-a');
  live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
  fs.copyFileSync(first.cert, live.cert);
  fs.copyFileSync(first.key, live.key);
  gw = await gateway({ SWITCHBOARD_SIP_TLS_CERT: live.cert, SWITCHBOARD_SIP_TLS_KEY: live.key, SWITCHBOARD_SIP_ENCRYPTION: `${SECURE}=require/allow` }); // TLS required, SRTP allowed: the callers here offer plain RTP (the SRTP half is enforced too)
  ca = selfSigned(dir, 'trunk-ca');
  const server = issuedBy(dir, ca, 'gw-m');
  mutualGw = await gateway({ SWITCHBOARD_SIP_TLS_CERT: server.cert, SWITCHBOARD_SIP_TLS_KEY: server.key, SWITCHBOARD_SIP_TLS_CA: ca.cert });
});
after(async () => {
  for (const c of closers) c();
  await gw?.stop();
  await mutualGw?.stop();
});

const tlsPort = (g: Gw): number => g.sip.tls?.port ?? assert.fail('no TLS listener');
const caOf = (file: string): Buffer => fs.readFileSync(file);

async function waitFor<T>(fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function ua(g: Gw, to: string, o: Partial<Parameters<typeof SipTlsUa.connect>[0]> = {}): Promise<SipTlsUa> {
  const u = await SipTlsUa.connect({ port: tlsPort(g), to: to.slice(1), ca: caOf(live.cert), ...o });
  closers.push(() => u.close());
  return u;
}

test('a call over TLS: 200 OK with a transport=tls Contact on the connection, the call row says tls, BYE over TLS', { timeout: 60_000 }, async () => {
  const u = await ua(gw, SECURE);
  const ok = await u.invite(40_000);
  assert.equal(ok?.status, 200, `final: ${ok?.status}`);
  assert.match(ok.headers.get('contact') ?? '', new RegExp(`^<sip:switchboard@127\\.0\\.0\\.1:${tlsPort(gw)};transport=tls>$`));
  assert.match(ok.headers.get('via') ?? '', /^SIP\/2\.0\/TLS /);
  const row = await waitFor(() => gw.store.read('default').calls.findOne({ provider: 'sip', provider_call_id: u.callId }), 10_000, 'call row');
  const recorded = await waitFor(() => gw.store.read('default').calls.get(row.id)?.transport && gw.store.read('default').calls.get(row.id), 10_000, 'transport recorded');
  assert.equal(recorded.transport, 'tls');
  assert.equal(recorded.media_encryption, 'none');
  const bye = await u.bye();
  assert.equal(bye?.status, 200);
  await waitFor(() => gw.store.read('default').calls.get(row.id)?.state === 'ended', 10_000, 'call ended');
  // The evidence pack says how the call travelled (call.json and VERIFY.md).
  const zip = await buildEvidencePack({ store: gw.store, tenant: 'default', callId: row.id, recording: null, transcriptVtt: 'WEBVTT\n', transcriptJson: [], generatedAt: Date.now(), generatedBy: 'test' });
  const out = tmpDir('sb-sip-tls-pack-');
  fs.writeFileSync(path.join(out, 'e.zip'), zip);
  assert.equal(spawnSync('unzip', ['-q', 'e.zip'], { cwd: out }).status, 0);
  const packed = JSON.parse(fs.readFileSync(path.join(out, 'call.json'), 'utf8')) as { call: { transport: string; media_encryption: string } };
  assert.deepEqual([packed.call.transport, packed.call.media_encryption], ['tls', 'none']);
  assert.match(fs.readFileSync(path.join(out, 'VERIFY.md'), 'utf8'), /Encryption in transit: signalling TLS, media none/);
});

test('the gateway hangs up a TLS call: its BYE comes over the caller\'s TLS connection (Via TLS), answered there', { timeout: 60_000 }, async () => {
  const u = await ua(gw, OPEN);
  assert.equal((await u.invite(40_000))?.status, 200);
  const row = await waitFor(() => gw.store.read('default').calls.findOne({ provider: 'sip', provider_call_id: u.callId }), 10_000, 'call row');
  const session = await waitFor(() => gw.calls.get(row.id), 10_000, 'the call session');
  await session.hangup('test: operator hangs up');
  const bye = await waitFor(() => u.requests.find((r) => r.method === 'BYE'), 10_000, 'BYE on the TLS connection');
  assert.match(bye.headers.get('via') ?? '', new RegExp(`^SIP/2\\.0/TLS 127\\.0\\.0\\.1:${tlsPort(gw)};`));
  await waitFor(() => gw.store.read('default').calls.get(row.id)?.state === 'ended', 10_000, 'call ended');
});

test('TLS 1.1 is refused by the gateway (protocol version alert); the same client at TLS 1.2 connects', { timeout: 20_000 }, async () => {
  const old = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' } as const;
  await assert.rejects(ua(gw, OPEN, { tlsOptions: old }), (err: Error & { code?: string }) => err.code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  const ok = await ua(gw, OPEN, { tlsOptions: { ...old, maxVersion: 'TLSv1.2' } });
  assert.equal(ok.socket.getProtocol(), 'TLSv1.2');
});

test('certificate files replaced while running: the next handshake presents the new one; a broken file keeps the old', { timeout: 60_000 }, async () => {
  const before = await ua(gw, OPEN);
  assert.equal(before.socket.getPeerX509Certificate()?.fingerprint256, fingerprintOf(live.cert));
  const next = selfSigned(dir, 'gw-b');
  // Replaced as deployment tools do: the new files renamed into place.
  fs.copyFileSync(next.key, `${live.key}.tmp`);
  fs.copyFileSync(next.cert, `${live.cert}.tmp`);
  fs.renameSync(`${live.key}.tmp`, live.key);
  fs.renameSync(`${live.cert}.tmp`, live.cert);
  const want = fingerprintOf(next.cert);
  const seen = await waitFor(async () => {
    const u = await SipTlsUa.connect({ port: tlsPort(gw), to: OPEN.slice(1), ca: caOf(next.cert) }).catch(() => null);
    const fp = u?.socket.getPeerX509Certificate()?.fingerprint256;
    u?.close();
    return fp === want && fp;
  }, 20_000, 'the new certificate in a handshake');
  assert.equal(seen, want);
  const options = await ua(gw, OPEN, { ca: caOf(next.cert) });
  options.send(options.build('OPTIONS'));
  assert.equal((await options.response((r) => /OPTIONS/.test(r.headers.get('cseq') ?? ''), 10_000))?.status, 200);
  // A broken certificate file: logged, the working one stays (checked after the watcher has had time to see it).
  fs.writeFileSync(live.cert, 'not a certificate');
  await waitFor(() => gw.sip.tls?.reload() === false, 10_000, 'the broken file seen');
  const still = await ua(gw, OPEN, { ca: caOf(next.cert) });
  assert.equal(still.socket.getPeerX509Certificate()?.fingerprint256, want);
});

test('a cleartext INVITE on a route that requires TLS: 403 + Warning, no call row, one call_rejected (tls_required)', { timeout: 30_000 }, async () => {
  const u = await SipUa.open({ gateway: { address: '127.0.0.1', port: gw.sip.port }, to: SECURE.slice(1) });
  closers.push(() => u.close());
  const res = await u.invite();
  assert.equal(res.status, 403);
  assert.ok(!res.statuses.includes(100), 'refused statelessly (no 100 Trying)');
  const refusal = u.responses.find((r) => r.status === 403);
  assert.match(refusal?.headers.get('warning') ?? '', /^399 switchboard "TLS is required/);
  assert.equal(gw.store.read('default').calls.findOne({ provider: 'sip', provider_call_id: u.callId }), undefined);
  const rejected = [...gw.store.events()].filter((e) => e.reducer === 'call_rejected' && (e.args as { provider_call_id?: string }).provider_call_id === u.callId);
  assert.equal(rejected.length, 1);
  assert.match(String((rejected[0]?.args as { reason?: string }).reason), /^tls_required/);
});

test('mutual TLS: a client without a certificate gets no SIP; one with a certificate issued under the CA is answered', { timeout: 30_000 }, async () => {
  const serverCa = caOf(ca.cert);
  const anon = await SipTlsUa.connect({ port: tlsPort(mutualGw), to: OPEN.slice(1), ca: serverCa }).catch((err: Error & { code?: string }) => err);
  if (anon instanceof SipTlsUa) {
    // TLS 1.3: the client finishes first; the gateway's alert arrives on the next read.
    closers.push(() => anon.close());
    anon.send(anon.build('OPTIONS'));
    await waitFor(() => anon.socket.destroyed || anon.error, 10_000, 'the connection refused');
    assert.equal(anon.responses.length, 0);
    assert.match(anon.error?.code ?? 'closed', /CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|closed|ECONNRESET/);
  } else assert.match(anon.code ?? '', /CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|ECONNRESET/);
  const client = issuedBy(dir, ca, 'trunk-1');
  const u = await ua(mutualGw, OPEN, { ca: serverCa, cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) });
  u.send(u.build('OPTIONS'));
  assert.equal((await u.response((r) => /OPTIONS/.test(r.headers.get('cseq') ?? ''), 10_000))?.status, 200);
});

test('outbound over TLS: a ;transport=tls target is dialled over TLS with our client certificate; the row says tls; BYE on the connection', { timeout: 60_000 }, async () => {
  const far = issuedBy(dir, ca, 'far-end');
  const uas = await TlsUas.listen({ cert: fs.readFileSync(far.cert), key: fs.readFileSync(far.key), ca: caOf(ca.cert) });
  closers.push(() => uas.close());
  const to = `sip:alice@127.0.0.1:${uas.port};transport=tls`;
  const { callId } = await mutualGw.sip.dialer.dial({ tenant: 'default', caller: 'test', from: OPEN, to });
  const read = () => mutualGw.store.read('default').calls;
  const row = await waitFor(() => read().get(callId)?.transport && read().get(callId), 30_000, 'outbound call answered over TLS');
  assert.equal(row.transport, 'tls');
  assert.equal(row.media_encryption, 'none');
  assert.deepEqual(uas.clientCertificates, [fingerprintOf(path.join(dir, 'gw-m.crt'))], 'one connection, our certificate shown');
  const call = uas.calls[0] ?? assert.fail('no connection');
  const invite = call.requests.find((r) => r.method === 'INVITE');
  assert.match(invite?.headers.get('via') ?? '', /^SIP\/2\.0\/TLS 127\.0\.0\.1:\d+;/);
  assert.match(invite?.headers.get('contact') ?? '', new RegExp(`;transport=tls>$`));
  await waitFor(() => call.requests.some((r) => r.method === 'ACK'), 10_000, 'the ACK over the connection');
  // The far end hangs up in the dialog, on the same connection.
  const inv = invite ?? assert.fail('no INVITE');
  call.send(Buffer.from(
    `BYE sip:switchboard@127.0.0.1:${tlsPort(mutualGw)};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:${uas.port};branch=z9hG4bKbye1\r\nMax-Forwards: 70\r\n` +
      `From: ${call.answeredTo}\r\nTo: ${inv.headers.get('from')}\r\nCall-ID: ${inv.headers.get('call-id')}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n`,
  ));
  assert.equal((await call.response((r) => /BYE/.test(r.headers.get('cseq') ?? ''), 10_000))?.status, 200);
  await waitFor(() => read().get(callId)?.state === 'ended', 10_000, 'the call ended by the far BYE');
});
