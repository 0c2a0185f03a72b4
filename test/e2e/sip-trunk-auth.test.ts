/**
 * Trunk admission end to end (in-process gateway, SWITCHBOARD_SIP_ALLOW = 127.0.0.1/32 + 127.77.0.0/16,
 * SWITCHBOARD_SIP_USERS = a JSON file, SWITCHBOARD_SIP_RATE = 20,20): sipp with the right password gets its call
 * answered after a 401; with a wrong one it gets 401 again and no call is recorded; sipp from 127.0.0.2 (outside
 * the allowlist) gets 403 and no call; unknown user and wrong password get byte-identical refusals; a burst of
 * OPTIONS from one source is cut to its bucket while another source is answered.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { digestResponse, ha1Of, parseDigest } from '../../ingress/sip/digest.ts';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { SipProbe } from '../helpers/sip.ts';
import { runSipp } from '../helpers/sipp.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15554440000';
const SERVICE = '15554440000';
const REALM = 'switchboard.test';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let sipPort: number;
const probes: SipProbe[] = [];

before(async () => {
  sipPort = await freePort();
  const users = path.join(tmpDir('sb-sip-users-'), 'users.json');
  fs.writeFileSync(users, JSON.stringify({ trunk: 's3cret-pass', other: 'another-pass' }));
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  gw = await startTestGateway({
    env: {
      SWITCHBOARD_SIP_PORT: String(sipPort),
      SWITCHBOARD_RTP_PORTS: `${low}-${low + 49}`,
      SWITCHBOARD_SIP_ALLOW: '127.0.0.1/32, 127.77.0.0/16',
      SWITCHBOARD_SIP_USERS: users,
      SWITCHBOARD_SIP_REALM: REALM,
      SWITCHBOARD_SIP_RATE: '20,20',
      SWITCHBOARD_LOG_LEVEL: process.env.SB_TEST_LOG ?? 'silent',
    },
  });
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(
    await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 25_000, retries: 0 }, who),
  );
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
});
after(async () => {
  for (const p of probes) p.close();
  await gw?.stop();
});

const read = () => gw.store.read('default');
const callBy = (sipCallId: string) => read().calls.findOne({ provider: 'sip', provider_call_id: sipCallId });
const sippCallId = (run: Awaited<ReturnType<typeof runSipp>>): string => /^Call-ID:\s*(\S+)/im.exec(run.messages[0]?.text ?? '')?.[1] ?? '';
const statuses = (run: Awaited<ReturnType<typeof runSipp>>): string[] => run.messages.filter((m) => m.dir === 'received').map((m) => m.first.split(' ')[1] ?? '');

async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function probe(): Promise<SipProbe> {
  const p = await SipProbe.open([5060], '127.77');
  probes.push(p);
  return p;
}

function optionsFrom(p: SipProbe, callId: string, cseq: number, authorization?: string): Buffer {
  return Buffer.from(
    `OPTIONS sip:${SERVICE}@127.0.0.1:${sipPort} SIP/2.0\r\nVia: SIP/2.0/UDP ${p.address}:5060;branch=z9hG4bK-${callId}-${cseq}\r\nMax-Forwards: 70\r\n` +
      `From: <sip:probe@${p.address}>;tag=probe-${callId}\r\nTo: <sip:${SERVICE}@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} OPTIONS\r\n` +
      `${authorization ? `Authorization: ${authorization}\r\n` : ''}Content-Length: 0\r\n\r\n`,
  );
}

test('digest auth, right password (sipp -au/-ap): 401, then the authenticated INVITE is answered and BYE ends the call', { timeout: 60_000 }, async () => {
  const run = await runSipp({ scenario: 'uac_auth.xml', port: sipPort, service: SERVICE, timeoutS: 30, extra: ['-au', 'trunk', '-ap', 's3cret-pass'] });
  assert.equal(run.code, 0, `${run.output}\n${run.messages.map((m) => m.text).join('\n---\n')}`);
  assert.ok(statuses(run).includes('401'));
  const authz = run.messages.find((m) => m.dir === 'sent' && /^Authorization:/im.test(m.text));
  assert.match(authz?.text ?? '', /qop=auth/i, 'sipp answered the qop=auth challenge');
  const call = await waitFor(() => callBy(sippCallId(run))?.state === 'ended' && callBy(sippCallId(run)), 10_000, 'call ended');
  assert.equal(call.end_reason, 'sip:bye');
  assert.ok(call.answered_at !== null);
});

test('digest auth, wrong password: 401 again, no call recorded', { timeout: 60_000 }, async () => {
  const run = await runSipp({ scenario: 'uac_auth_refused.xml', port: sipPort, service: SERVICE, timeoutS: 20, extra: ['-au', 'trunk', '-ap', 'wrong-pass'] });
  assert.equal(run.code, 0, run.output);
  assert.deepEqual(statuses(run).filter((s) => s !== '100'), ['401', '401']);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(callBy(sippCallId(run)), undefined);
});

test('a source outside SWITCHBOARD_SIP_ALLOW (sipp on 127.0.0.2): 403 Forbidden, no call recorded', { timeout: 60_000 }, async () => {
  const run = await runSipp({ scenario: 'uac_forbidden.xml', port: sipPort, service: SERVICE, timeoutS: 20, local: '127.0.0.2', extra: ['-au', 'trunk', '-ap', 's3cret-pass'] });
  assert.equal(run.code, 0, run.output);
  assert.deepEqual(statuses(run).filter((s) => s !== '100'), ['403']);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(callBy(sippCallId(run)), undefined);
});

test('no enumeration: an unknown user and a known user with a wrong password get byte-identical 401s', { timeout: 30_000 }, async () => {
  const p = await probe();
  const since = Date.now();
  // A challenge first (its nonce is what both attempts answer, as a real UAC would).
  p.send(optionsFrom(p, 'enum-0', 1), { port: sipPort });
  const first = await p.waitFor(() => p.responses(since, (c) => c === 'enum-0')[0], 5000);
  assert.equal(first?.status, 401);
  const ch = parseDigest(first!.headers.get('www-authenticate') ?? '')!;
  assert.equal(ch.realm, REALM);
  const uri = `sip:${SERVICE}@127.0.0.1:${sipPort}`;
  const auth = (user: string, pass: string, nc: string) =>
    `Digest username="${user}", realm="${REALM}", nonce="${ch.nonce}", uri="${uri}", response="${digestResponse({ ha1: ha1Of(user, REALM, pass), method: 'OPTIONS', uri, nonce: ch.nonce!, qop: 'auth', nc, cnonce: 'c0ffee01' })}", algorithm=MD5, cnonce="c0ffee01", qop=auth, nc=${nc}`;
  // Same-length Call-IDs, so that only the parts named below differ.
  p.send(optionsFrom(p, 'enum-a', 2, auth('ghost', 's3cret-pass', '00000001')), { port: sipPort });
  p.send(optionsFrom(p, 'enum-b', 2, auth('trunk', 'wrong-pass!', '00000002')), { port: sipPort });
  p.send(optionsFrom(p, 'enum-c', 2, auth('trunk', 's3cret-pass', '00000003')), { port: sipPort });
  const raw = (callId: string) => p.waitFor(() => p.received.find((r) => r.at >= since && r.res?.headers.get('call-id') === callId), 5000);
  const [a, b, c] = await Promise.all([raw('enum-a'), raw('enum-b'), raw('enum-c')]);
  assert.equal(c?.res?.status, 200, 'the right password on the same nonce is accepted');
  assert.equal(a?.res?.status, 401);
  assert.equal(b?.res?.status, 401);
  // What legitimately differs per request: the echoed Via branch, From tag, Call-ID (all from the request), the
  // To tag derived from them and the fresh nonce of each challenge. Everything else — status line, header order, realm, qop, algorithm, no stale,
  // body, length — must be the same bytes.
  const norm = (buf: Buffer) =>
    buf
      .toString('latin1')
      .replaceAll(/enum-[ab]/g, 'enum-X')
      .replace(/nonce="[^"]*"/, 'nonce="N"')
      // The To tag is derived from the request (RFC 3261 §8.2.6.2), so it differs as the Call-IDs do.
      .replace(/^(To:[^\r\n]*;tag=)[0-9a-f]{16}/im, '$1T');
  assert.equal(a!.raw.length, b!.raw.length);
  assert.equal(norm(a!.raw), norm(b!.raw));
  assert.doesNotMatch(a!.raw.toString('latin1'), /stale/i);
});

test('rate limit: a burst of 100 OPTIONS from one source is cut to its bucket (one 503 + Retry-After, then silence); another source is answered', { timeout: 30_000 }, async () => {
  const [flood, calm] = await Promise.all([probe(), probe()]);
  const since = Date.now();
  for (let i = 0; i < 100; i++) flood.send(optionsFrom(flood, `flood-${i}`, 1), { port: sipPort });
  for (let i = 0; i < 5; i++) calm.send(optionsFrom(calm, `calm-${i}`, 1), { port: sipPort });
  await calm.waitFor(() => calm.responses(since, (c) => !!c?.startsWith('calm-')).length >= 5, 5000);
  await new Promise((r) => setTimeout(r, 500));
  const got = flood.responses(since, (c) => !!c?.startsWith('flood-'));
  const challenged = got.filter((r) => r.status === 401).length;
  const busy = got.filter((r) => r.status === 503);
  // 20 deep at 20/s: ~20 answered however slowly the burst is sent here (≤ 60 even over 2 s).
  assert.ok(challenged >= 10 && challenged <= 60, `${challenged} of 100 answered`);
  assert.ok(busy.length >= 1 && busy.length <= 3, `${busy.length} 503s`);
  assert.equal(busy[0]?.headers.get('retry-after'), '1');
  assert.ok(got.length < 100, 'the rest of the flood is dropped');
  assert.deepEqual(calm.responses(since, (c) => !!c?.startsWith('calm-')).map((r) => r.status), [401, 401, 401, 401, 401]);
});
