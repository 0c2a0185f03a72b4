/** The shared ingress suite's driver for Vonage: the Vonage peer (JWT-signed webhooks, NCCO, binary L16 16 kHz). */
import { randomUUID } from 'node:crypto';
import { speechL16, pcmEnergy } from '../helpers/audio-l16.ts';
import { VONAGE_SECRET } from '../helpers/gateway.ts';
import { sendRequest, vonageJwt, VonagePeer } from '../helpers/vonage-peer.ts';
import { upgradeStatus, type DialOutcome, type DriverCall, type IngressDriver, type TestGateway } from './driver.ts';

const SAMPLES_PER_MS = 16; // the gateway asks for audio/l16;rate=16000

class VonageCall implements DriverCall {
  constructor(private readonly peer: VonagePeer) {}
  get providerCallId(): string {
    return this.peer.uuid;
  }
  async dial(): Promise<DialOutcome> {
    const r = await this.peer.dial();
    if (r.kind === 'streaming') return { kind: 'streaming' };
    // An unknown number: the answer NCCO only talks, and the call ends when it runs out.
    if (r.reason === 'ncco-ended' && this.peer.streams === 0 && this.peer.talks.length > 0) {
      return /lines are busy/i.test(this.peer.talks.join(' ')) ? { kind: 'busy' } : { kind: 'refused' };
    }
    return { kind: 'error', detail: `${r.reason} ${r.status ?? ''} ${r.body ?? ''}` };
  }
  speak(text: string): Promise<void> {
    return this.peer.play(speechL16(text, 16000));
  }
  sendDtmf(digit: string): boolean {
    return this.peer.sendDtmf(digit);
  }
  async hangup(): Promise<void> {
    await this.peer.hangup();
  }
  receivedMs(): number {
    return this.peer.receivedBytes / 2 / SAMPLES_PER_MS;
  }
  receivedEnergy(fromMs = 0, toMs = Number.POSITIVE_INFINITY): number {
    const all = this.peer.receivedAudio();
    return pcmEnergy(all.subarray(Math.floor(fromMs * SAMPLES_PER_MS), Math.min(all.length, Math.floor(toMs * SAMPLES_PER_MS))));
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

const answerBody = (to: string, uuid: string): string =>
  JSON.stringify({ to: to.replace(/^\+/, ''), from: '15550001111', uuid, conversation_uuid: `CON-${uuid}`, endpoint_type: 'phone' });

export const vonageDriver: IngressDriver = {
  name: 'vonage',
  provider: 'vonage',
  hangupReason: 'vonage:completed',
  call: (gw: TestGateway, to: string) => new VonageCall(new VonagePeer({ publicUrl: gw.publicUrl, secret: VONAGE_SECRET, to, retryMs: 10_000 })),
  async forgedRequests(gw, to) {
    const body = answerBody(to, randomUUID());
    const answer = `${gw.publicUrl}/vonage/answer`;
    const out: Array<{ what: string; status: number }> = [];
    const send = async (what: string, url: string, b: string, headers: Record<string, string>): Promise<void> => {
      const res = await sendRequest(url, 'POST', b, headers);
      out.push({ what, status: 'error' in res ? -1 : res.status });
    };
    await send('answer webhook, unsigned', answer, body, {});
    await send('answer webhook, signed with the wrong key', answer, body, { Authorization: `Bearer ${vonageJwt('not-the-secret', body)}` });
    await send('answer webhook, payload_hash of another body', answer, body, { Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, '{"to":"1"}')}` });
    await send('event webhook, unsigned', `${gw.publicUrl}/vonage/event`, '{"uuid":"00000000-0000-4000-8000-000000000000","status":"completed"}', {});
    out.push({ what: 'media upgrade, unsigned', status: await upgradeStatus(`${gw.publicUrl.replace(/^http/, 'ws')}/vonage/media`) });
    return out;
  },
  async retriedAnswer(gw, to, times) {
    // Vonage re-signs every delivery (a fresh JWT, new jti and iat); the body is the same.
    const uuid = randomUUID();
    const body = answerBody(to, uuid);
    const statuses: number[] = [];
    for (let i = 0; i < times; i++) {
      const res = await sendRequest(`${gw.publicUrl}/vonage/answer`, 'POST', body, { Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, body)}` });
      if ('error' in res) statuses.push(-1);
      else statuses.push(res.status === 200 && res.body.includes('"websocket"') ? 200 : res.status === 200 ? -200 : res.status);
    }
    return { statuses, providerCallId: uuid };
  },
};
