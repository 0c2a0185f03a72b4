/**
 * Session timers (RFC 4028) at a carrier's real scale, as the gateway ships (no SWITCHBOARD_SIP_MIN_SE override: its
 * Min-SE is 90 s): two 5-minute sipp calls at once, each with Session-Expires 180 s, so a refresh is due every 90 s.
 * - The gateway is refresher (refresher=uas): it sends three UPDATEs, each at least half the interval after the
 *   previous refresh and before the session would expire; sipp answers each 200 and hangs up at ≈ 300 s.
 * - sipp is refresher (refresher=uac): it re-INVITEs every 90 s; the gateway answers each 200 with
 *   Session-Expires 180;refresher=uac and keeps the call.
 * Both calls end `sip:bye` (never `sip:session-expired`). The bounds checked are the protocol's (half the interval,
 * the expiry), read from sipp's own trace; the test waits for messages, never for a duration of its own.
 * sipp sends no RTP in these calls, so the RTP inactivity timeout is off (SWITCHBOARD_SIP_RTP_TIMEOUT_MS=0).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { runSipp, type SippRun } from '../helpers/sipp.ts';
import { resultOf } from '../helpers/store.ts';
import { number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553350000';
const SERVICE = '15553350000';
const SE_MS = 180_000;
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let sipPort: number;

before(async () => {
  sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  // sipp sends no RTP in these calls: the RTP inactivity timeout (60 s by default) is off, or it would end them.
  gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 99}`, SWITCHBOARD_SIP_RTP_TIMEOUT_MS: '0' } });
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default' }, { tenant: 'default', caller: 'test' }));
});
after(async () => {
  await gw?.stop();
});

const sippCallId = (run: SippRun): string => /^Call-ID:\s*(\S+)/im.exec(run.messages[0]?.text ?? '')?.[1] ?? '';
const callOf = (run: SippRun) => gw.store.read('default').calls.findOne({ provider: 'sip', provider_call_id: sippCallId(run) });

/** The call of a finished sipp run, once its BYE has been applied (sipp has its 200 by then; the row may follow). */
async function endedCall(run: SippRun) {
  const end = Date.now() + 30_000;
  for (;;) {
    const c = callOf(run);
    if (c?.state === 'ended') return c;
    if (Date.now() > end) throw new Error(`call ${sippCallId(run)} not ended (${c?.state})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const cseqMethod = (text: string) => /^CSeq:\s*\d+\s+(\w+)/im.exec(text)?.[1];

test('Session-Expires 180 over a 5-minute call: the gateway refreshes every 90 s as refresher, and answers the peer refreshing every 90 s', { timeout: 480_000 }, async () => {
  const [mine, theirs] = await Promise.all([
    runSipp({ scenario: 'uac_timer_90s_gateway.xml', port: sipPort, service: SERVICE, timeoutS: 420 }),
    runSipp({ scenario: 'uac_timer_90s_peer.xml', port: sipPort, service: SERVICE, timeoutS: 420 }),
  ]);
  assert.equal(mine.code, 0, mine.output);
  assert.equal(theirs.code, 0, theirs.output);

  // The gateway as refresher: the ACK of the INVITE starts the session; each UPDATE refreshes it.
  const start = mine.messages.find((m) => m.dir === 'sent' && m.first.startsWith('ACK '))!.at;
  const updates = mine.messages.filter((m) => m.dir === 'received' && m.first.startsWith('UPDATE '));
  assert.equal(updates.length, 3, 'three refreshes in 5 minutes');
  let last = start;
  for (const u of updates) {
    assert.match(u.text, /Session-Expires:\s*180;refresher=uac/i);
    const gap = u.at - last;
    assert.ok(gap >= SE_MS / 2 - 1_000, `a refresh ${gap} ms after the last one: RFC 4028 §10 refreshes at half the interval`);
    assert.ok(gap < SE_MS - 32_000, `a refresh ${gap} ms after the last one would let the session expire`);
    last = u.at;
  }

  // The peer as refresher: every re-INVITE answered 200 with the negotiated interval, the peer still the refresher.
  const oks = theirs.messages.filter((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && cseqMethod(m.text) === 'INVITE');
  assert.equal(oks.length, 4, 'the INVITE and three refreshing re-INVITEs answered 200');
  for (const ok of oks) assert.match(ok.text, /Session-Expires:\s*180;refresher=uac/i);
  assert.equal(theirs.messages.filter((m) => m.dir === 'received' && m.first.startsWith('BYE ')).length, 0, 'the gateway never hung up');

  for (const run of [mine, theirs]) {
    assert.equal((await endedCall(run)).end_reason, 'sip:bye');
  }
});
