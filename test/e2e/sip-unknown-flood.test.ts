/**
 * A flood of INVITEs to unknown numbers over real UDP (in-process gateway, default SIP rate limit 50/s burst 100):
 * one source sends 400 INVITEs, each to another number, and never ACKs. The log gets one `call_rejected` for the
 * source and, at the window's end, one `call_rejections_aggregated` whose count makes up the rest of the 404s it
 * was sent; what the rate limit dropped is written nowhere. Each INVITE gets at most one datagram back (a stateless
 * 404: no 100 Trying, no retransmission), and a call from another source is answered meanwhile.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, startTestGateway } from '../helpers/gateway.ts';
import { SipProbe } from '../helpers/sip.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { number_added } from '../../schema/reducers.ts';

const NUMBER = '+15554449999';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let sipPort: number;
const closers: Array<() => void> = [];

before(async () => {
  sipPort = await freePort();
  const low = 30000 + 2 * Math.floor(Math.random() * 4000);
  gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_RTP_PORTS: `${low}-${low + 19}`, SWITCHBOARD_LOG_LEVEL: process.env.SB_TEST_LOG ?? 'silent' } });
  const who = { tenant: 'default', caller: 'test' };
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default' }, who));
});
after(async () => {
  for (const c of closers) c();
  await gw?.stop();
});

function invite(p: SipProbe, i: number): Buffer {
  const callId = `flood-${String(i).padStart(6, '0')}`;
  const offer = `v=0\r\no=- 1 1 IN IP4 ${p.address}\r\ns=-\r\nc=IN IP4 ${p.address}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;
  return Buffer.from(
    `INVITE sip:1555000${String(i).padStart(4, '0')}@127.0.0.1:${sipPort} SIP/2.0\r\nVia: SIP/2.0/UDP ${p.address}:5060;branch=z9hG4bK-${callId}\r\nMax-Forwards: 70\r\n` +
      `From: <sip:scanner@${p.address}>;tag=s-${i}\r\nTo: <sip:1555000${String(i).padStart(4, '0')}@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\n` +
      `Contact: <sip:scanner@${p.address}:5060>\r\nContent-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(offer)}\r\n\r\n${offer}`,
  );
}

const events = (reducer: string) => [...gw.store.events()].filter((e) => e.reducer === reducer);

test('400 INVITEs to unknown numbers from one source: ≤ 1 datagram back each, 1 row + 1 count in the log, another caller still answered', { timeout: 60_000 }, async () => {
  const flood = await SipProbe.open([5060]);
  closers.push(() => flood.close());
  const N = 400;
  const ua = await SipUa.open({ gateway: { address: '127.0.0.1', port: sipPort }, to: NUMBER.slice(1), address: '127.0.0.3' });
  closers.push(() => ua.close());
  // ~1,000 INVITEs a second (in batches, so that the kernel's socket buffers are not what drops them)…
  const sending = (async () => {
    for (let i = 0; i < N; i++) {
      flood.send(invite(flood, i), { port: sipPort });
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 20));
    }
  })();
  // …and a legitimate call from another source meanwhile.
  await new Promise((r) => setTimeout(r, 50));
  const call = await ua.invite();
  assert.equal(call.status, 200, `the other caller's INVITE: ${JSON.stringify(call.statuses)}`);
  await sending;
  await ua.bye();
  // Long enough for Timer G's retransmissions (0.5 s, 1.5 s, 3.5 s after each 404) to have shown up.
  await new Promise((r) => setTimeout(r, 4000));
  const got = flood.received.filter((r) => r.res);
  const perCall = new Map<string, number[]>();
  for (const r of got) perCall.set(r.res!.headers.get('call-id') ?? '', [...(perCall.get(r.res!.headers.get('call-id') ?? '') ?? []), r.res!.status]);
  const repeated = [...perCall.entries()].filter(([, s]) => s.length > 1);
  assert.deepEqual(repeated.slice(0, 3), [], `${repeated.length} INVITEs got more than one datagram back (100 Trying, retransmitted 404s)`);
  const notFound = got.filter((r) => r.res!.status === 404).length;
  const busy = got.filter((r) => r.res!.status === 503).length;
  assert.ok(notFound >= 50 && notFound < N, `${notFound} 404s: the rate limit (burst 100) let some through and dropped the rest`);
  assert.ok(busy >= 1 && busy <= 10, `${busy} 503s (one a second at most)`);
  assert.equal(got.length, notFound + busy);
  // The log: one row for this source and reason; the rest of the 404s are counted when the window ends.
  const rows = events('call_rejected');
  assert.equal(rows.length, 1, `${rows.length} call_rejected rows for one source's flood`);
  assert.equal(events('call_rejections_aggregated').length, 0, 'counted in memory until the window ends');
  await gw.refusals.flush();
  const counted = events('call_rejections_aggregated');
  assert.equal(counted.length, 1);
  const a = counted[0]!.args as { provider: string; source: string; reason: string; count: number; last_to: string | null };
  assert.equal(a.provider, 'sip');
  assert.equal(a.source, flood.address);
  assert.equal(a.reason, 'unknown_number');
  assert.equal(a.count + rows.length, notFound, 'every 404 sent is on record (a row or a count); nothing for what the rate limit dropped');
  assert.match(a.last_to ?? '', /^1555000\d{4}$/);
  assert.ok(gw.store.verify().ok);
});
