/** The shared ingress suite's driver for Twilio: the Twilio peer (signed form webhooks, TwiML, µ-law 8 kHz Media Streams). */
import twilio from 'twilio';
import { speechUlaw, ulawEnergy } from '../helpers/audio.ts';
import { TWILIO_TOKEN } from '../helpers/gateway.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { upgradeStatus, type DialOutcome, type DriverCall, type IngressDriver, type TestGateway } from './driver.ts';

const BYTES_PER_MS = 8;

class TwilioCall implements DriverCall {
  constructor(private readonly peer: TwilioPeer) {}
  get providerCallId(): string {
    return this.peer.callSid;
  }
  async dial(): Promise<DialOutcome> {
    const r = await this.peer.dial();
    if (r.kind === 'streaming') return { kind: 'streaming' };
    if (r.kind === 'rejected') return this.peer.endDetail === 'busy' ? { kind: 'busy' } : { kind: 'refused' };
    return { kind: 'error', detail: `${r.reason} ${r.status ?? ''} ${r.body ?? ''}` };
  }
  speak(text: string): Promise<void> {
    return this.peer.play(speechUlaw(text));
  }
  sendDtmf(digit: string): boolean {
    return this.peer.sendDtmf(digit);
  }
  async hangup(): Promise<void> {
    await this.peer.hangup();
  }
  receivedMs(): number {
    return this.peer.received.reduce((n, b) => n + b.length, 0) / BYTES_PER_MS;
  }
  receivedEnergy(fromMs = 0, toMs = Number.POSITIVE_INFINITY): number {
    const all = this.peer.receivedAudio();
    return ulawEnergy(all.subarray(Math.floor(fromMs * BYTES_PER_MS), Math.min(all.length, Math.floor(toMs * BYTES_PER_MS))));
  }
  get streams(): number {
    return this.peer.streams;
  }
  get clears(): number {
    return this.peer.clears;
  }
  get protocolErrors(): readonly string[] {
    return this.peer.protocolErrors;
  }
  waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return this.peer.waitFor(pred, timeoutMs, what);
  }
  close(): Promise<void> {
    return this.peer.close();
  }
}

const form = (url: string, params: Record<string, string>, headers: Record<string, string>): Promise<Response> =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) });

export const twilioDriver: IngressDriver = {
  name: 'twilio',
  provider: 'twilio',
  hangupReason: 'twilio:completed',
  call: (gw: TestGateway, to: string) => new TwilioCall(new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to, from: '+15550001111', redirectRetryMs: 10_000 })),
  async forgedRequests(gw, to) {
    const params = { CallSid: 'CA' + 'a'.repeat(32), AccountSid: 'AC' + '1'.repeat(32), From: '+15550001111', To: to, CallStatus: 'ringing' };
    const voice = `${gw.publicUrl}/twilio/voice`;
    const out: Array<{ what: string; status: number }> = [];
    const send = async (what: string, url: string, headers: Record<string, string>): Promise<void> => {
      const res = await form(url, params, headers);
      await res.arrayBuffer();
      out.push({ what, status: res.status });
    };
    await send('answer webhook, unsigned', voice, {});
    await send('answer webhook, signed with the wrong key', voice, { 'x-twilio-signature': twilio.getExpectedTwilioSignature('not-the-token', voice, params) });
    await send('answer webhook, signature of another URL', voice, { 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, `${gw.publicUrl}/twilio/status`, params) });
    await send('status webhook, unsigned', `${gw.publicUrl}/twilio/status`, {});
    out.push({ what: 'media upgrade, unsigned', status: await upgradeStatus(`${gw.publicUrl.replace(/^http/, 'ws')}/twilio/media`) });
    return out;
  },
  async retriedAnswer(gw, to, times) {
    // Twilio retries a webhook with the same parameters and the same signature.
    const params = { CallSid: 'CA' + 'b'.repeat(32), AccountSid: 'AC' + '1'.repeat(32), From: '+15550001111', To: to, CallStatus: 'ringing' };
    const url = `${gw.publicUrl}/twilio/voice`;
    const sig = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, params);
    const statuses: number[] = [];
    for (let i = 0; i < times; i++) {
      const res = await form(url, params, { 'x-twilio-signature': sig });
      const body = await res.text();
      statuses.push(res.status === 200 && body.includes('<Stream') ? 200 : res.status === 200 ? -200 : res.status);
    }
    return { statuses, providerCallId: params.CallSid };
  },
};
