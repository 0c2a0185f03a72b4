/**
 * The shared ingress suite's driver for the SIP trunk ingress: a scripted UA
 * (test/helpers/sip-ua.ts) over UDP, PCMU 8 kHz RTP paced in real time,
 * RFC 4733 DTMF, BYE to hang up.
 *
 * The gateway runs as a secured trunk: digest auth (SWITCHBOARD_SIP_USERS,
 * one user) and a source allowlist of 127.0.0.1/32 (SWITCHBOARD_SIP_ALLOW),
 * so every call the driver places authenticates, and the SIP equivalent of a
 * forged webhook is a request failing that admission.
 */
import fs from 'node:fs';
import path from 'node:path';
import { speechUlaw, ulawEnergy } from '../helpers/audio.ts';
import type { SipResponse } from '../../ingress/sip/message.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { tmpDir } from '../helpers/tmp.ts';
import type { DialOutcome, DriverCall, ForgedResult, IngressDriver, TestGateway } from './driver.ts';

const BYTES_PER_MS = 8;
const REALM = 'switchboard.test';
const TRUNK = { username: 'trunk', password: 'trunk-secret-0123456789' };

/** The trunk's users file, written once per process. */
let usersFile: string | null = null;
function trunkUsers(): string {
  if (!usersFile) {
    usersFile = path.join(tmpDir('sb-sip-users-'), 'users.json');
    fs.writeFileSync(usersFile, JSON.stringify({ [TRUNK.username]: TRUNK.password }));
  }
  return usersFile;
}

const gatewayOf = (gw: TestGateway): { address: string; port: number } => ({ address: '127.0.0.1', port: gw.sip.port });

async function poll(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

class SipCall implements DriverCall {
  private ua: SipUa | null = null;
  private opening: Promise<SipUa> | null = null;
  private established = 0;
  readonly providerCallId: string;

  constructor(
    private readonly gw: TestGateway,
    private readonly to: string,
  ) {
    // The Call-ID is chosen before the UA exists (the suite reads it to find the row), so the UA is made with it.
    this.providerCallId = `${Math.random().toString(36).slice(2)}${Date.now().toString(36)}@sip-ua.test`;
  }

  private open(): Promise<SipUa> {
    this.opening ??= SipUa.open({ gateway: gatewayOf(this.gw), to: this.to, credentials: TRUNK, callId: this.providerCallId }).then((ua) => (this.ua = ua));
    return this.opening;
  }

  async dial(): Promise<DialOutcome> {
    const ua = await this.open();
    const r = await ua.invite();
    if (r.status >= 200 && r.status < 300) {
      this.established++;
      return { kind: 'streaming' };
    }
    if (r.status === 404) return { kind: 'refused' };
    if (r.status === 503 && Number(r.retryAfter) > 0) return { kind: 'busy' };
    return { kind: 'error', detail: `INVITE final ${r.status} (statuses ${r.statuses.join(',')})` };
  }

  async speak(text: string): Promise<void> {
    await this.ua?.media.speak(speechUlaw(text));
  }

  sendDtmf(digit: string): boolean {
    return this.ua?.media.sendDtmf(digit) ?? false;
  }

  async hangup(): Promise<void> {
    const status = await this.ua?.bye();
    if (status !== null && status !== undefined && status !== 200) this.ua?.media.protocolErrors.push(`BYE answered ${status}`);
  }

  receivedMs(): number {
    return (this.ua?.media.receivedBytes ?? 0) / BYTES_PER_MS;
  }

  receivedEnergy(fromMs = 0, toMs = Number.POSITIVE_INFINITY): number {
    const all = Buffer.concat(this.ua?.media.received ?? []);
    return ulawEnergy(all.subarray(Math.floor(fromMs * BYTES_PER_MS), Math.min(all.length, Math.floor(toMs * BYTES_PER_MS))));
  }

  get streams(): number {
    return this.established;
  }

  get clears(): number {
    return this.ua?.media.cutOff ?? 0;
  }

  get protocolErrors(): readonly string[] {
    return this.ua?.media.protocolErrors ?? [];
  }

  waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return poll(pred, timeoutMs, what);
  }

  async close(): Promise<void> {
    this.ua?.close();
    this.ua = null;
  }
}

export const sipDriver: IngressDriver = {
  name: 'sip',
  provider: 'sip',
  hangupReason: 'sip:bye',
  gatewayOptions: { env: { SWITCHBOARD_SIP_USERS: trunkUsers(), SWITCHBOARD_SIP_REALM: REALM, SWITCHBOARD_SIP_ALLOW: '127.0.0.1/32' } },
  supports: {
    mediaResume: {
      unsupported:
        'SIP media is RTP over UDP: there is no media connection for the network to drop and the caller to re-open (a lost stream is concealed and the dialog stays up); the SIP resume is the restart of the gateway, covered by sip-kill9.test.ts',
    },
  },
  call: (gw, to) => new SipCall(gw, to),

  async forgedRequests(gw, to) {
    const out: ForgedResult[] = [];
    const ua = await SipUa.open({ gateway: gatewayOf(gw), to });
    const outsider = await SipUa.open({ gateway: gatewayOf(gw), to, address: `127.${10 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}` });
    try {
      const status = async (what: string, bytes: Buffer, expected: number, from = ua): Promise<string> => {
        const res = await from.transact(bytes, 5000);
        out.push({ what, status: res?.status ?? 0, expected });
        return res?.headers.get('www-authenticate') ?? '';
      };
      const challenge = await status('INVITE without credentials', ua.build('INVITE', { body: ua.offer(), toTag: null }), 401);
      const wrongPassword = ua.authorization(challenge, 'INVITE', { username: TRUNK.username, password: 'not-the-password' });
      await status('INVITE with a wrong password', ua.build('INVITE', { body: ua.offer(), toTag: null, extra: [`Authorization: ${wrongPassword}`] }), 401);
      const unknownUser = ua.authorization(challenge, 'INVITE', { username: 'intruder', password: TRUNK.password });
      await status('INVITE as a user the trunk does not know', ua.build('INVITE', { body: ua.offer(), toTag: null, extra: [`Authorization: ${unknownUser}`] }), 401);
      // Right credentials for a nonce the gateway never issued.
      const forgedNonce = ua.authorization(challenge.replace(/nonce="[^"]*"/, `nonce="${'A'.repeat(43)}"`), 'INVITE', TRUNK);
      await status('INVITE with a forged nonce', ua.build('INVITE', { body: ua.offer(), toTag: null, extra: [`Authorization: ${forgedNonce}`] }), 401);
      // A genuine request captured on the wire and replayed as a new transaction (same nonce and nonce count).
      const captured = ua.authorization(challenge, 'OPTIONS', TRUNK);
      const original = await ua.transact(ua.build('OPTIONS', { toTag: null, extra: [`Authorization: ${captured}`] }), 5000);
      if (original?.status !== 200) throw new Error(`the genuine OPTIONS was answered ${original?.status ?? 'nothing'}: its replay would prove nothing`);
      await status('the same credentials replayed in a new transaction', ua.build('OPTIONS', { toTag: null, extra: [`Authorization: ${captured}`] }), 401);
      await status('BYE outside any dialog, unauthenticated', ua.build('BYE', { toTag: null }), 401);
      await status('BYE for a dialog that does not exist (made-up tags)', ua.build('BYE', { toTag: 'forged-tag' }), 481);
      const fromOutside = outsider.authorization(challenge, 'INVITE', TRUNK);
      await status('INVITE with valid credentials from outside the allowlist', outsider.build('INVITE', { body: outsider.offer(), toTag: null, extra: [`Authorization: ${fromOutside}`] }), 403, outsider);
    } finally {
      ua.close();
      outsider.close();
    }
    return out;
  },

  /**
   * A trunk retransmits its INVITE (Timer A) when responses are lost: the same bytes, same Call-ID, branch and
   * CSeq. Each copy is sent once the 200 for the previous one arrived unacknowledged; the gateway's INVITE
   * transaction absorbs the copy and its 200 is retransmitted (RFC 6026 Accepted state): a delivery counts as
   * answered (200) when a 200 of the same dialog (same To tag, same SDP answer) follows it.
   */
  async retriedAnswer(gw, to, times) {
    const ua = await SipUa.open({ gateway: gatewayOf(gw), to, credentials: TRUNK });
    try {
      const is200 = (r: SipResponse): boolean =>
        r.status === 200 && (r.headers.get('call-id') ?? '') === ua.callId && /INVITE/.test(r.headers.get('cseq') ?? '');
      const first = await ua.invite({ ack: false });
      const statuses = [first.status];
      const answer = ua.responses.find(is200);
      for (let i = 1; i < times; i++) {
        const next = ua.next(is200, 10_000);
        ua.send(ua.inviteBytes!);
        const res = await next;
        const sameDialog = res !== null && answer !== undefined && res.headers.get('to') === answer.headers.get('to') && res.body.equals(answer.body);
        statuses.push(res === null ? 0 : sameDialog ? res.status : -res.status);
      }
      if (answer) ua.ack(answer);
      await ua.bye();
      return { statuses, providerCallId: ua.callId };
    } finally {
      ua.close();
    }
  },
};
