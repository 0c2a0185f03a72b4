/**
 * Digest password guessing over real UDP (in-process gateway, SWITCHBOARD_SIP_USERS with one user): 20 source
 * addresses (127.x.y.z probes) share a dictionary whose 251st word is the password. None of them ever gets a 200,
 * not even for the right word, nor afterwards; a throttled attempt at an unknown user name and at the real one get
 * byte-identical 401s; and the trunk, from an address that has not been failing, still gets its 200.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { digestResponse, ha1Of, parseDigest } from '../../ingress/sip/digest.ts';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { SipProbe, type Received } from '../helpers/sip.ts';
import { tmpDir } from '../helpers/tmp.ts';

const REALM = 'guessing.test';
const RIGHT = 'correct-horse-battery';
const SERVICE = '15554440000';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let sipPort: number;
const probes: SipProbe[] = [];

before(async () => {
  sipPort = await freePort();
  const users = path.join(tmpDir('sb-sip-guess-'), 'users.json');
  fs.writeFileSync(users, JSON.stringify({ trunk: RIGHT }));
  gw = await startTestGateway({
    env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_SIP_USERS: users, SWITCHBOARD_SIP_REALM: REALM, SWITCHBOARD_LOG_LEVEL: process.env.SB_TEST_LOG ?? 'silent' },
  });
});
after(async () => {
  for (const p of probes) p.close();
  await gw?.stop();
});

async function probe(): Promise<SipProbe> {
  const p = await SipProbe.open([5060]);
  probes.push(p);
  return p;
}

const uri = () => `sip:${SERVICE}@127.0.0.1:${sipPort}`;

/** An OPTIONS from `p`; Call-IDs of one length, so that two answers differ only where the request did. */
function options(p: SipProbe, callId: string, authorization?: string): Buffer {
  return Buffer.from(
    `OPTIONS ${uri()} SIP/2.0\r\nVia: SIP/2.0/UDP ${p.address}:5060;branch=z9hG4bK-${callId}\r\nMax-Forwards: 70\r\n` +
      `From: <sip:probe@${p.address}>;tag=t-${callId}\r\nTo: <sip:${SERVICE}@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 OPTIONS\r\n` +
      `${authorization ? `Authorization: ${authorization}\r\n` : ''}Content-Length: 0\r\n\r\n`,
  );
}

function authorization(user: string, pass: string, nonce: string, nc: number): string {
  const ncHex = nc.toString(16).padStart(8, '0');
  const response = digestResponse({ ha1: ha1Of(user, REALM, pass), method: 'OPTIONS', uri: uri(), nonce, qop: 'auth', nc: ncHex, cnonce: 'c0ffee01' });
  return `Digest username="${user}", realm="${REALM}", nonce="${nonce}", uri="${uri()}", response="${response}", algorithm=MD5, cnonce="c0ffee01", qop=auth, nc=${ncHex}`;
}

async function answer(p: SipProbe, callId: string): Promise<Received> {
  const r = await p.waitFor(() => p.received.find((x) => x.res?.headers.get('call-id') === callId), 10_000);
  assert.ok(r, `an answer to ${callId}`);
  return r;
}

async function challenge(p: SipProbe, callId: string): Promise<string> {
  p.send(options(p, callId), { port: sipPort });
  const r = await answer(p, callId);
  assert.equal(r.res?.status, 401);
  return parseDigest(r.res!.headers.get('www-authenticate') ?? '')!.nonce!;
}

test('20 sources guessing one password: no 200 ever, throttled 401s identical for an unknown and a real user, the trunk still gets in', { timeout: 60_000 }, async () => {
  const attackers = await Promise.all(Array.from({ length: 20 }, () => probe()));
  const nonce = await challenge(attackers[0]!, 'g-nonce-0000');
  const words = Array.from({ length: 300 }, (_, i) => (i === 250 ? RIGHT : `guess-${i}`));
  const statuses: number[] = [];
  // Rounds of one guess per source (the per-source rate limit is not what stops them).
  for (let round = 0; round < words.length / attackers.length; round++) {
    const sent = attackers.map((p, k) => {
      const i = round * attackers.length + k;
      const callId = `g-${String(i).padStart(8, '0')}`;
      p.send(options(p, callId, authorization('trunk', words[i]!, nonce, i + 1)), { port: sipPort });
      return answer(p, callId);
    });
    for (const r of await Promise.all(sent)) statuses.push(r.res!.status);
  }
  assert.equal(statuses.length, 300);
  assert.deepEqual([...new Set(statuses)], [401], `the right password (guess 251) was accepted: statuses ${JSON.stringify(statuses.filter((s) => s !== 401))}`);
  // Afterwards the right password from any attacking address is still not checked.
  for (const [k, p] of attackers.entries()) {
    const callId = `r-${String(k).padStart(8, '0')}`;
    p.send(options(p, callId, authorization('trunk', RIGHT, nonce, 1000 + k)), { port: sipPort });
    assert.equal((await answer(p, callId)).res?.status, 401, `attacker ${p.address}`);
  }
  // Throttled: an unknown user name and the real one with a wrong password get the same bytes but for the nonce
  // (and what echoes the request: Via branch, From tag, Call-ID, the To tag derived from them).
  const a = attackers[7]!;
  a.send(options(a, 'x-ghost-0001', authorization('ghost', 'guess-x', nonce, 2001)), { port: sipPort });
  a.send(options(a, 'x-trunk-0001', authorization('trunk', 'guess-x', nonce, 2002)), { port: sipPort });
  const [ghost, trunk] = await Promise.all([answer(a, 'x-ghost-0001'), answer(a, 'x-trunk-0001')]);
  const norm = (buf: Buffer) =>
    buf
      .toString('latin1')
      .replaceAll(/x-(ghost|trunk)-0001/g, 'x-X')
      .replace(/nonce="[^"]*"/, 'nonce="N"')
      .replace(/^(To:[^\r\n]*;tag=)[0-9a-f]{16}/im, '$1T');
  assert.equal(ghost.raw.length, trunk.raw.length);
  assert.equal(norm(ghost.raw), norm(trunk.raw));
  assert.doesNotMatch(ghost.raw.toString('latin1'), /stale|Retry-After/i);
  // The trunk, from an address that has not been failing, is checked and let in.
  const t = await probe();
  const fresh = await challenge(t, 'trunk-nonce1');
  t.send(options(t, 'trunk-0000ok', authorization('trunk', RIGHT, fresh, 1)), { port: sipPort });
  assert.equal((await answer(t, 'trunk-0000ok')).res?.status, 200);
  assert.ok(gw.sip.admission.guessing.unchecked >= 250, `${JSON.stringify(gw.sip.admission.guessing)}: most guesses went unchecked`);
});

test('a challenged INVITE gets one 401 and nothing else: no 100 Trying before it, no retransmission after it (stateless, RFC 3261 §8.2.7)', { timeout: 30_000 }, async () => {
  const p = await probe();
  const callId = 'inv-chal-0001';
  p.send(
    Buffer.from(
      `INVITE ${uri()} SIP/2.0\r\nVia: SIP/2.0/UDP ${p.address}:5060;branch=z9hG4bK-${callId}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@${p.address}>;tag=t1\r\n` +
        `To: <sip:${SERVICE}@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContact: <sip:probe@${p.address}:5060>\r\nContent-Length: 0\r\n\r\n`,
    ),
    { port: sipPort },
  );
  assert.equal((await answer(p, callId)).res?.status, 401);
  // Timer G would resend a 401 to an INVITE that is never ACKed after 0.5 s and 1.5 s.
  await new Promise((r) => setTimeout(r, 2000));
  assert.deepEqual(p.received.filter((r) => r.res?.headers.get('call-id') === callId).map((r) => r.res!.status), [401]);
});
