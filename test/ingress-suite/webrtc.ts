/**
 * The shared ingress suite's driver for the WebRTC ingress: a werift client
 * peer (test/helpers/webrtc-client.ts) posting WHIP-style offers, Opus at
 * 16 kHz, RFC 4733 DTMF, DELETE to hang up, `?resume=TOKEN` after a drop.
 * ICE runs on loopback only: the suite file using this driver runs inside a
 * private network namespace (test/e2e/ingress-suite-webrtc.test.ts).
 */
import crypto from 'node:crypto';
import { SessionTokens, TOKEN_TTL_MS } from '../../ingress/webrtc/session-token.ts';
import { loadOrCreateMasterKey } from '../../recording/master-key.ts';
import { pcmEnergy, speechL16 } from '../helpers/audio-l16.ts';
import { WebrtcClient } from '../helpers/webrtc-client.ts';
import type { DialOutcome, DriverCall, ForgedResult, IngressDriver, TestGateway } from './driver.ts';

const SAMPLES_PER_MS = 16;

class WebrtcCall implements DriverCall {
  constructor(private readonly client: WebrtcClient) {}
  get providerCallId(): string {
    return this.client.session ?? '';
  }
  async dial(): Promise<DialOutcome> {
    const r = await this.client.dial();
    if (r.status === 201) return { kind: 'streaming' };
    if (r.status === 404 && r.body.includes('unknown_number')) return { kind: 'refused' };
    if (r.status === 503 && r.body.includes('over_capacity') && Number(r.retryAfter) > 0) return { kind: 'busy' };
    return { kind: 'error', detail: `offer ${r.status} ${r.body}` };
  }
  speak(text: string): Promise<void> {
    return this.client.speak(speechL16(text, 16000));
  }
  sendDtmf(digit: string): boolean {
    return this.client.sendDtmf(digit);
  }
  async hangup(): Promise<void> {
    const status = await this.client.hangup();
    if (status !== 204) this.client.protocolErrors.push(`DELETE of the session answered ${status}`);
  }
  receivedMs(): number {
    return this.client.receivedSamples / SAMPLES_PER_MS;
  }
  receivedEnergy(fromMs = 0, toMs = Number.POSITIVE_INFINITY): number {
    const all = new Int16Array(this.client.receivedSamples);
    let off = 0;
    for (const f of this.client.received) (all.set(f, off), (off += f.length));
    return pcmEnergy(all.subarray(Math.floor(fromMs * SAMPLES_PER_MS), Math.min(all.length, Math.floor(toMs * SAMPLES_PER_MS))));
  }
  get streams(): number {
    return this.client.streams;
  }
  get clears(): number {
    return this.client.cutOff;
  }
  get protocolErrors(): readonly string[] {
    return this.client.protocolErrors;
  }
  async waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  close(): Promise<void> {
    return this.client.close();
  }
}

/** An offer the gateway's SDP checks accept (as a browser's), for requests refused before any ICE. */
const OFFER = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0', 'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:abcd', 'a=ice-pwd:0123456789abcdef012345', 'a=fingerprint:sha-256 ' + Array.from({ length: 32 }, () => 'AB').join(':'),
  'a=setup:actpass', 'a=mid:0', 'a=sendrecv', 'a=rtcp-mux', 'a=rtpmap:111 opus/48000/2', '',
].join('\r\n');

const session = (): string => `wrtc_${crypto.randomBytes(24).toString('base64url')}`;

export const webrtcDriver: IngressDriver = {
  name: 'webrtc',
  provider: 'webrtc',
  hangupReason: 'webrtc:hangup',
  supports: {
    retriedAnswer: {
      unsupported:
        'POST /webrtc/offer takes no idempotency key: every offer without a token is a new session and a new call (the answer carries a fresh session and token), so a client cannot retry an answer; a retry with the session token is the resume path, covered by the media-drop case',
    },
  },
  call: (gw: TestGateway, to: string) => new WebrtcCall(new WebrtcClient({ baseUrl: gw.publicUrl, to })),

  async forgedRequests(gw) {
    const out: ForgedResult[] = [];
    const offer = async (what: string, token: string, expected: number): Promise<void> => {
      const res = await fetch(`${gw.publicUrl}/webrtc/offer?resume=${encodeURIComponent(token)}`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: OFFER });
      await res.arrayBuffer();
      out.push({ what, status: res.status, expected });
    };
    const claims = { tenant: 'default', callId: 'call_forged', session: session() };
    await offer('resume with a token signed by another key', new SessionTokens(crypto.randomBytes(32)).issue(claims), 401);
    const key = loadOrCreateMasterKey(gw.dataDir).key;
    await offer('resume with an expired token (the gateway\'s key)', new SessionTokens(key, () => Date.now() - TOKEN_TTL_MS - 60_000).issue(claims), 401);
    const genuine = new SessionTokens(key).issue(claims);
    const sig = genuine.split('.')[1] ?? '';
    const otherBody = (new SessionTokens(key).issue({ ...claims, callId: 'call_someone_else' }).split('.')[0] ?? '').slice('sbw_'.length);
    await offer('resume with a token whose claims were changed', `sbw_${otherBody}.${sig}`, 401);
    await offer('resume with a token that is not one', 'sbw_not-a-token', 401);
    const del = await fetch(`${gw.publicUrl}/webrtc/${session()}`, { method: 'DELETE' });
    out.push({ what: 'DELETE of a session id the gateway never issued', status: del.status, expected: 404 });
    return out;
  },

  retriedAnswer() {
    return Promise.reject(new Error('not supported: see supports.retriedAnswer'));
  },
};
