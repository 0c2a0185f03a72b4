/**
 * A replayed signed Twilio webhook cannot take over a live call. Twilio's
 * signature has no timestamp or nonce: the call's initial `/twilio/voice`,
 * re-sent byte for byte (same URL, parameters, X-Twilio-Signature), passes the
 * signature check. While the call's stream is live it gets no stream token and
 * writes nothing; the caller's stream keeps flowing. Once the media is really
 * lost the resume works, once: the token is single-use, and a second stream
 * for a call whose stream is live is refused (1008).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import twilio from 'twilio';
import WebSocket from 'ws';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553339999';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
const open: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of open.reverse()) await c();
});

async function gateway(): Promise<Gw> {
  const gw = await startTestGateway();
  open.push(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'twilio', consent_policy_id: p.policy_id }, who));
  return gw;
}

const callOf = (gw: Gw, sid: string) => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: sid });
const count = (gw: Gw, reducer: string): number => [...gw.store.events()].filter((e) => e.reducer === reducer).length;

/** The call's first webhook exactly as Twilio sent it (the Twilio peer's parameters, signed with the account's token). */
function replay(gw: Gw, peer: TwilioPeer): Promise<string> {
  const url = `${gw.publicUrl}/twilio/voice`;
  const params = { AccountSid: peer.accountSid, ApiVersion: '2010-04-01', CallSid: peer.callSid, CallStatus: 'ringing', Called: peer.to, Caller: peer.from, Direction: 'inbound', From: peer.from, To: peer.to };
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, params) },
    body: new URLSearchParams(params),
  }).then(async (res) => {
    assert.equal(res.status, 200);
    return res.text();
  });
}
const tokenIn = (twiml: string): string | null => /<Parameter name="token" value="([^"]+)"\/>/.exec(twiml)?.[1] ?? null;
const NO_TOKEN = /^<\?xml[^>]*><Response><Pause length="1"\/><Redirect method="POST">http:\/\/127\.0\.0\.1:\d+\/twilio\/voice<\/Redirect><\/Response>$/;

/** A raw Media Stream as an attacker (or Twilio) opens it: connected, start with `token`, then 20 ms µ-law frames while `talking`. */
class RawStream {
  readonly closed: Promise<number>;
  talking = true;
  private seq = 1;
  private readonly ws: WebSocket;
  private readonly timer: NodeJS.Timeout;

  constructor(gw: Gw, callSid: string, token: string) {
    const url = `${gw.publicUrl.replace('http', 'ws')}/twilio/media`;
    this.ws = new WebSocket(url, { headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, {}) }, perMessageDeflate: false });
    this.closed = new Promise((resolve) => this.ws.on('close', (code) => resolve(code)));
    this.ws.on('error', () => undefined);
    const streamSid = `MZ${'0'.repeat(24)}${Math.floor(Math.random() * 1e8).toString().padStart(8, '0')}`;
    this.ws.on('open', () => {
      this.send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
      this.send({ event: 'start', sequenceNumber: String(this.seq++), streamSid, start: { streamSid, callSid, accountSid: `AC${'1'.repeat(32)}`, tracks: ['inbound'], customParameters: { token }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } });
    });
    const silence = Buffer.alloc(160, 0xff).toString('base64');
    this.timer = setInterval(() => {
      if (this.talking && this.ws.readyState === WebSocket.OPEN) this.send({ event: 'media', sequenceNumber: String(this.seq++), streamSid, media: { track: 'inbound', payload: silence } });
    }, 20);
    open.push(() => this.close());
  }

  close(): void {
    clearInterval(this.timer);
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  private send(msg: object): void {
    this.ws.send(JSON.stringify(msg));
  }
}

test('the initial webhook replayed during a live call gets no stream token, writes nothing, and the caller’s stream keeps flowing', { timeout: 60_000 }, async () => {
  const gw = await gateway();
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, redirectRetryMs: 5000 });
  open.push(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = callOf(gw, peer.callSid)!;
  await peer.waitFor(() => callOf(gw, peer.callSid)?.state === 'active' && gw.calls.mediaLive(call.id) && peer.receivedAudio().length > 4000, 15_000, 'the call is live and the agent speaks');
  const received = count(gw, 'call_received');
  for (let i = 0; i < 3; i++) assert.match(await replay(gw, peer), NO_TOKEN, 'no <Connect><Stream>, no token');
  assert.equal(count(gw, 'call_received'), received, 'the replays wrote no call_received…');
  assert.equal(count(gw, 'call_resume_requested'), 0, '…and no resume');
  assert.equal(callOf(gw, peer.callSid)?.state, 'active');
  const heard = peer.receivedAudio().length;
  await peer.waitFor(() => peer.receivedAudio().length > heard + 8000, 15_000, 'the agent keeps talking to the caller');
  assert.equal(peer.streams, 1, 'the caller’s stream was never closed');
  assert.equal(peer.streamInfos[0]?.closedBy, undefined);
  await peer.hangup();
});

test('after the stream really drops the resume works once, with a single-use token; a stream gone quiet is replaced, not talked over', { timeout: 60_000 }, async () => {
  const gw = await gateway();
  // A caller whose Twilio does not follow the <Redirect>: the test plays Twilio's resume itself.
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, redirectRetryMs: 5000, followRedirect: false, statusOnEnd: false });
  open.push(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = callOf(gw, peer.callSid)!;
  await peer.waitFor(() => callOf(gw, peer.callSid)?.state === 'active' && gw.calls.mediaLive(call.id), 15_000, 'live');
  gw.calls.get(call.id)!.detach('network drop (test)');
  await peer.waitFor(() => callOf(gw, peer.callSid)?.state === 'resuming', 10_000, 'media lost: resuming');

  // The media is lost: the webhook resumes the call. Asked again at once, it answers the same, still unused, token.
  const token = tokenIn(await replay(gw, peer));
  assert.ok(token, 'a resume token once the media is lost');
  assert.equal(tokenIn(await replay(gw, peer)), token, 'one pending resume: a second request gets the same token, no rival');
  const resumed = new RawStream(gw, peer.callSid, token);
  await peer.waitFor(() => gw.calls.mediaLive(call.id) && callOf(gw, peer.callSid)?.state === 'active', 10_000, 'the resumed stream carries the call');
  assert.equal(callOf(gw, peer.callSid)?.media_epoch, 2);

  // The same token again: single-use, refused, and the resumed stream is untouched.
  const reused = new RawStream(gw, peer.callSid, token);
  assert.equal(await reused.closed, 1008);
  // While the resumed stream is live, the webhook hands out nothing.
  assert.match(await replay(gw, peer), NO_TOKEN);
  assert.ok(resumed.isOpen && gw.calls.mediaLive(call.id));
  assert.equal(callOf(gw, peer.callSid)?.media_epoch, 2, 'no other media connection was recorded');

  // The stream goes quiet (a half-open socket): its media is lost, so a resume is granted and the quiet stream is
  // closed by the gateway — it cannot come back and talk over the stream that replaces it.
  resumed.talking = false;
  let second: string | null = null;
  for (let i = 0; i < 50 && second === null; i++) {
    await new Promise((r) => setTimeout(r, 200));
    second = tokenIn(await replay(gw, peer));
  }
  assert.ok(second && second !== token, 'a fresh token once the stream has gone quiet');
  assert.equal(await resumed.closed, 1000, 'the quiet stream was closed');
  const third = new RawStream(gw, peer.callSid, second);
  await peer.waitFor(() => gw.calls.mediaLive(call.id) && callOf(gw, peer.callSid)?.state === 'active', 10_000, 'the call goes on on the new stream');
  assert.equal(callOf(gw, peer.callSid)?.media_epoch, 3);
  third.close();
});
