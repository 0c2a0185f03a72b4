/**
 * A new inbound call, for app.ts (which keeps the live dialogs): from the INVITE to the attached leg.
 *
 *   INVITE ─► number still routed? (else 404) ─► session timer (422 below Min-SE) ─► RTP port (else 503)
 *     ─► SDP offer negotiated under the SRTP half of the encryption policy (`encryptionFor(v, peer).srtp`; a plain
 *        offer where SRTP is required ─► 488 + Warning) ─► 180, or 183 + SDP with early media (its RtpSession
 *        encrypted like the call) — reliable when the INVITE requires 100rel (prack.ts: the answer waits for the PRACK)
 *     ─► call control decides ─► 200 + answer ─► `recordSecurity` (transport, srtp | none) ─► leg attached
 *   INVITE without SDP (late offer, RFC 3261 §13.2.1): our offer in the 200 — with a=crypto when the policy asks for
 *   SRTP (RTP/SAVP under `require`, RTP/AVP under `prefer`, like an outbound call) — and the answer in the ACK,
 *   read against that offer (a plain answer where SRTP is required: BYE `sip:bad-answer`).
 *
 * Before any of it, `screen` refuses statelessly a new INVITE to a number nobody routes (404) or one that came in clear
 * where the policy requires TLS (403 + Warning); `numberFor` is the dialled number both use.
 *
 * Before the 200 the caller may send UPDATE in the early dialog (early-update.ts): an offer after our 183 + SDP
 * changes the media in force (the early media follows it, the 200 carries its answer); before that, 491.
 *
 * It owns the INVITEs still ringing (CANCEL), their early dialogs (UPDATE), the reliable provisionals awaiting PRACK
 * and the late offers awaiting their ACK; app.ts looks them up through `ringing`, `earlyUpdate`, `provisionals` and
 * `lateOfferAck`.
 */
import type { Logger } from 'pino';
import { unmapped } from './cidr.ts';
import { TLS_REQUIRED_WARNING, type EncryptionPolicy } from './encryption-policy.ts';
import { Dialog, DialogState, dialogId, newTag } from './dialog.ts';
import { earlyUpdate, type EarlyDialog } from './early-update.ts';
import { parseSipUri } from './headers.ts';
import { playPrompt } from './early-media.ts';
import { buildResponse } from './message.ts';
import { firstRSeq, ReliableProvisional, requires100rel } from './prack.ts';
import { RtpSession, type RtpPortPool } from './rtp.ts';
import { negotiate, offerSdp, type NegotiatedMedia, type SrtpAgreement } from './sdp.ts';
import { answerSrtp, offerCrypto } from './sdes.ts';
import { negotiateUas, type UasTimerDecision } from './session-timer.ts';
import { encryptionFields, SrtpContext } from './srtp.ts';
import { loadWerift, weriftLoaded } from '../werift.ts';
import type { MasterKey } from '../../recording/master-key.ts';
import { InviteTxState, type InviteServerTransaction, type NonInviteServerTransaction } from './transaction.ts';
import type { Peer } from './transport.ts';
import type { SipUas } from './uas.ts';
import { ALLOW, type Refusal, type ValidRequest } from './validate.ts';
import { PROVIDER, type CallCtx, type SipAppDeps } from './app.ts';

const SDP = 'application/sdp';
type RtpSockets = Awaited<ReturnType<RtpPortPool['bind']>>;
type Ref = { tenant: string; callId: string };

/** What a new call needs of the app (app.ts). */
export interface NewCallHost {
  deps: SipAppDeps;
  log: Logger;
  uas(): SipUas;
  minSe(): number;
  masterKey(): MasterKey;
  encryptionFor(v: ValidRequest, peer: Peer): EncryptionPolicy;
  localAddress(peer: Peer): string;
  contact(peer: Peer): string;
  answerHeaders(peer: Peer, timer: UasTimerDecision): Array<[string, string]>;
  track(dialog: Dialog, rtp: RtpSession, ref: Ref, held: boolean, awaitingAck?: InviteServerTransaction | null): CallCtx;
  recordSecurity(ref: Ref, transport: Peer['transport'], mediaEncryption: 'none' | 'srtp'): Promise<void>;
  endCall(ref: Ref, reason: string, detail?: string): Promise<void>;
  endThenClose(ctx: CallCtx, reason: string, detail?: string): void;
  byeDialog(dialog: Dialog, reason: string): Promise<void>;
}

export class NewCalls {
  /** INVITEs still proceeding, by transaction key (CANCEL finds them here). */
  readonly ringing = new Map<string, { toTag: string }>();
  /** Reliable 18x awaiting their PRACK, by Call-ID + our tag (RFC 3262). */
  readonly provisionals = new Map<string, ReliableProvisional>();
  /** Early dialogs of the calls still ringing, by dialog id: an UPDATE before the answer (early-update.ts). */
  private readonly early = new Map<string, EarlyDialog>();
  /** Late-offer calls whose 200 (our offer) awaits the ACK with the answer, by dialog id. */
  private readonly lateOffers = new Map<string, { tx: InviteServerTransaction; answered: (sdp: string | null) => void }>();

  constructor(private readonly host: NewCallHost) {}

  /**
   * A new INVITE to a number nobody routes is refused before any transaction exists: a stateless 404 (RFC 3261
   * §8.2.7; no 100 Trying, and no Timer G retransmissions to a source that never ACKs — a flood from a forged
   * address would otherwise get a dozen datagrams per INVITE). The refusal is recorded first (bridge/refusals.ts).
   */
  screen(v: ValidRequest, peer: Peer): Promise<Refusal> | null {
    if (v.req.method !== 'INVITE' || v.to.params.tag) return null;
    const to = this.numberFor(v);
    if (this.host.deps.store.read(null).numbers.findOne({ number: to })) return this.screenEncryption(v, peer, to);
    const inbound = { provider: PROVIDER, providerCallId: v.callId, from: v.from.uri, to, source: unmapped(peer.address) };
    return this.host.deps.calls
      .refuseUnknown(inbound, 'sip:invite')
      .catch((err: unknown) => this.host.log.warn({ err, callId: v.callId }, 'SIP unknown-number refusal not recorded'))
      .then(() => {
        // debug: a flood must not become a log line per INVITE (the refusal log has the record).
        this.host.log.debug({ callId: v.callId, to }, 'SIP call rejected: unknown number');
        return { status: 404, detail: 'unknown number' };
      });
  }

  /** TLS required on this trunk or route and the INVITE came in clear: recorded (`tls_required`), then 403 + Warning. */
  private screenEncryption(v: ValidRequest, peer: Peer, to: string): Promise<Refusal> | null {
    if (peer.transport === 'tls') return null;
    const policy = this.host.encryptionFor(v, peer);
    if (policy.tls === 'prefer') this.host.log.info({ callId: v.callId, to, transport: peer.transport }, 'SIP call in clear on a trunk that prefers TLS');
    if (policy.tls !== 'require') return null;
    const inbound = { provider: PROVIDER, providerCallId: v.callId, from: v.from.uri, to, source: unmapped(peer.address) };
    return this.host.deps.calls
      .refuseByPolicy(inbound, 'sip:invite', `tls_required: INVITE over ${peer.transport}`)
      .catch((err: unknown) => this.host.log.warn({ err, callId: v.callId }, 'SIP TLS-required refusal not recorded'))
      .then(() => {
        this.host.log.info({ callId: v.callId, to, from: `${peer.address}:${peer.port}`, transport: peer.transport }, 'SIP call rejected: TLS required');
        return { status: 403, reason: 'Forbidden (TLS required)', headers: [['Warning', TLS_REQUIRED_WARNING]], detail: 'TLS required' };
      });
  }

  /** The dialled number: the Request-URI user (or To), matched against `numbers` as is, with +, or as a SIP URI. */
  numberFor(v: ValidRequest): string {
    const numbers = this.host.deps.store.read(null).numbers;
    const candidates: string[] = [];
    for (const uri of [v.req.uri, v.to.uri]) {
      const u = parseSipUri(uri);
      if (u?.user) candidates.push(u.user, /^\d+$/.test(u.user) ? `+${u.user}` : u.user, `sip:${u.user}@${u.host}`);
      else if (/^tel:/i.test(uri)) candidates.push(uri.slice(4).split(';')[0] ?? '');
    }
    return candidates.find((c) => numbers.findOne({ number: c })) ?? candidates[0] ?? v.req.uri;
  }

  /** An UPDATE in the early dialog of a call still ringing (early-update.ts): false when `v` is in none. */
  earlyUpdate(tx: NonInviteServerTransaction, v: ValidRequest): boolean {
    const early = this.early.get(dialogId(v.callId, v.to.params.tag ?? '', v.from.params.tag ?? ''));
    if (!early) return false;
    earlyUpdate(this.host, early, tx, v);
    return true;
  }

  /** Whether `v` belongs to the early dialog of a call still ringing. */
  hasEarly(v: ValidRequest): boolean {
    return this.early.has(dialogId(v.callId, v.to.params.tag ?? '', v.from.params.tag ?? ''));
  }

  /** The ACK of a late-offer 200 (its SDP = the answer): true when `id` was one. */
  lateOfferAck(id: string, sdp: string | null | undefined): boolean {
    const late = this.lateOffers.get(id);
    if (!late) return false;
    late.tx.acknowledged();
    late.answered(sdp ?? '');
    return true;
  }

  async invite(tx: InviteServerTransaction, v: ValidRequest, peer: Peer): Promise<void> {
    const { deps, log } = this.host;
    const uas = this.host.uas();
    const to = this.numberFor(v);
    const inbound = { provider: PROVIDER, providerCallId: v.callId, from: v.from.uri, to, source: unmapped(peer.address) };
    // (Screened before the transaction; a number removed since is refused here.)
    if (!deps.store.read(null).numbers.findOne({ number: to })) {
      await deps.calls.refuseUnknown(inbound, 'sip:invite');
      log.info({ callId: v.callId, to }, 'SIP call rejected: unknown number');
      return void uas.respond(tx, 404);
    }
    const timer = negotiateUas(v.req.headers, this.host.minSe());
    if (timer.kind === 'too-small') return void uas.respond(tx, 422, { headers: [['Min-SE', String(timer.minSe)]] });
    const sockets = await deps.rtp.bind().catch(() => null);
    if (!sockets) return void uas.respond(tx, 503, { headers: [['Retry-After', '5']] });
    const address = this.host.localAddress(peer);
    const sdpSession = Math.floor(Date.now() / 1000);
    const local = { address, port: sockets.port, sessionId: sdpSession, sessionVersion: 1 };
    const srtpLevel = this.host.encryptionFor(v, peer).srtp;
    // Late offer (no SDP in the INVITE): no negotiation now; our offer goes in the 200, the answer comes in the ACK.
    const neg = v.sdp ? negotiate(v.sdp, local, srtpLevel) : null;
    const release = (): void => this.releaseSockets(sockets);
    if (neg && !neg.ok) {
      release();
      return void uas.respond(tx, neg.status, { headers: [['Warning', neg.warning]] });
    }
    const toTag = newTag();
    this.ringing.set(tx.key, { toTag });
    const media = neg
      ? { rtpPort: sockets.port, remoteMedia: neg.media.remote, codec: neg.media.codec, payloadType: neg.media.payloadType, eventPayloadType: neg.media.eventPayloadType, sdpSession, sdpVersion: 1, direction: neg.media.direction, ...encryptionFields(neg.srtp, this.host.masterKey, v.callId) }
      : { rtpPort: sockets.port, remoteMedia: { address: '0.0.0.0', port: 0 }, codec: 'PCMU' as const, payloadType: 0, eventPayloadType: null, sdpSession, sdpVersion: 1 };
    const dialog = Dialog.fromInvite(v, toTag, peer, media);
    if (timer.kind === 'timer') dialog.snap.sessionTimer = { interval: timer.interval, weRefresh: timer.refresher === 'uas' };
    dialog.snap.peerAllowsUpdate = v.req.headers.values('allow').some((m) => m.toUpperCase() === 'UPDATE');
    const state: EarlyDialog = { dialog, peer, rtpPort: sockets.port, srtpLevel, neg, complete: false, rtp: null };
    this.early.set(dialog.id, state);
    const session = (n: { media: NegotiatedMedia; srtp?: SrtpAgreement }): RtpSession => {
      const rtp = new RtpSession(sockets, n.media, `switchboard@${address}`);
      if (n.srtp) rtp.srtp = new SrtpContext(n.srtp.keys);
      return rtp;
    };
    let early: RtpSession | null = null;
    try {
      const prompt = neg ? deps.earlyMedia?.forInbound({ source: inbound.source, number: to }) : undefined;
      const prackOk = await this.ring(tx, v, peer, toTag, prompt && neg ? neg.answer : null, state);
      // Early media: the prompt plays as RTP (SRTP when the call is) on the call's own session, before the 200 (a CANCEL stops it).
      if (prompt && state.neg && prackOk && tx.state === InviteTxState.Proceeding) {
        early = state.rtp = session(state.neg);
        await playPrompt(early, prompt, () => tx.state !== InviteTxState.Proceeding);
      }
      if (deps.ringMs && prackOk) await new Promise((r) => setTimeout(r, deps.ringMs));
      if (tx.state !== InviteTxState.Proceeding || !prackOk) {
        early?.close();
        release();
        // RFC 3262 §3: a reliable 18x never PRACKed ─► 5xx to the INVITE.
        if (!prackOk && tx.state === InviteTxState.Proceeding) uas.respond(tx, 504, { toTag, reason: 'Server Time-out (no PRACK)' });
        return void (await this.recordCancelled(inbound, prackOk ? 'sip:cancel' : 'sip:no-prack')); // cancelled while ringing
      }
      const decision = await deps.calls.receive(inbound, 'sip:invite');
      if (tx.state !== InviteTxState.Proceeding) {
        early?.close();
        release();
        if (decision.kind === 'accepted') await this.host.endCall(decision, 'sip:cancel');
        return;
      }
      if (decision.kind !== 'accepted') {
        early?.close();
        release();
        if (decision.kind === 'transfer') return void uas.respond(tx, 302, { toTag, headers: [['Contact', `<${decision.target}>`]] });
        // RFC 3261 §21.5.4: overloaded, try later (a proxy fails over to another node).
        if (decision.kind === 'busy') return void uas.respond(tx, 503, { toTag, headers: [['Retry-After', String(decision.retryAfterS)]] });
        return void uas.respond(tx, decision.kind === 'rejected' ? 404 : 480, { toTag });
      }
      const ref = { tenant: decision.tenant, callId: decision.callId };
      // The offer/answer in force: the INVITE's, or the last early UPDATE's (early-update.ts).
      const agreed = state.neg;
      if (!agreed) return await this.answerLateOffer(tx, v, peer, dialog, sockets, ref, timer, srtpLevel);
      const rtp = early ?? session(agreed);
      const ctx = this.host.track(dialog, rtp, ref, agreed.media.held, tx);
      ctx.srtpLevel = srtpLevel;
      rtp.on('latched', (at) => log.debug({ callId: v.callId, at }, 'RTP latched'));
      tx.onNoAck = () => {
        log.warn({ callId: v.callId }, '2xx never acknowledged: ending the call with BYE');
        this.host.endThenClose(ctx, 'sip:no-ack');
      };
      uas.respond(tx, 200, { toTag, headers: this.host.answerHeaders(peer, timer), body: Buffer.from(agreed.answer), contentType: SDP });
      log.info({ callId: v.callId, call: ref.callId, codec: agreed.media.codec, rtp: sockets.port, transport: peer.transport, media: agreed.srtp ? `srtp ${agreed.srtp.keys.suite}` : 'rtp' }, 'SIP call answered');
      await this.host.recordSecurity(ref, peer.transport, agreed.srtp ? 'srtp' : 'none');
      await deps.calls.attach(ref, ctx.leg);
    } finally {
      this.early.delete(dialog.id);
      this.ringing.delete(tx.key);
      this.provisionals.get(`${v.callId}|${toTag}`)?.stop();
      this.provisionals.delete(`${v.callId}|${toTag}`);
    }
  }

  private releaseSockets(sockets: RtpSockets): void {
    sockets.rtp.close();
    sockets.rtcp.close();
    this.host.deps.rtp.release(sockets.port);
  }

  /**
   * 180 Ringing (183 + SDP with early media); reliable (RFC 3262 §3: Require: 100rel, RSeq, retransmitted until the PRACK) when the INVITE
   * requires 100rel, and then the answer waits for the PRACK. False: no PRACK within 64·T1 (or cancelled meanwhile).
   */
  private async ring(tx: InviteServerTransaction, v: ValidRequest, peer: Peer, toTag: string, earlyAnswer: string | null, state: EarlyDialog): Promise<boolean> {
    const uas = this.host.uas();
    const headers: Array<[string, string]> = [['Contact', this.host.contact(peer)]];
    // Early media: 183 Session Progress with the SDP answer (early-media.ts); else 180 Ringing.
    const status = earlyAnswer ? 183 : 180;
    const body = earlyAnswer ? { body: Buffer.from(earlyAnswer), contentType: SDP } : {};
    if (!requires100rel(v.req.headers)) {
      uas.respond(tx, status, { toTag, headers, ...body });
      state.complete = earlyAnswer !== null; // the 183's answer completes the INVITE's offer/answer (early-update.ts)
      return true;
    }
    const rseq = firstRSeq();
    const res = buildResponse(v.req, status, { toTag, headers: [...headers, ['Require', '100rel'], ['RSeq', String(rseq)], ['Allow', ALLOW.join(', ')]], ...body });
    const rel = new ReliableProvisional(rseq, v.cseq.seq, () => tx.respond(res), uas.timers.T1);
    this.provisionals.set(`${v.callId}|${toTag}`, rel);
    const acked = await rel.settled;
    state.complete = acked && earlyAnswer !== null; // a reliable 183: complete once PRACKed
    return acked || tx.state !== InviteTxState.Proceeding;
  }

  /**
   * Late offer (RFC 3261 §13.2.1): our offer in the 200, the answer in the ACK. The media starts once the answer is
   * read; no ACK (Timer H') ends the call `sip:no-ack`, an ACK without a usable answer `sip:bad-answer` — with BYE.
   * Under an SRTP `require`/`prefer` policy the offer carries a=crypto lines (RTP/SAVP under `require`) and the
   * answer's a=crypto is read against them, as for an outbound call (uac.ts): the call is recorded `srtp` when the
   * answer took one, and a plain answer where SRTP is required ends the call like any unusable answer.
   */
  private async answerLateOffer(tx: InviteServerTransaction, v: ValidRequest, peer: Peer, dialog: Dialog, sockets: RtpSockets, ref: Ref, timer: UasTimerDecision, srtpLevel: EncryptionPolicy['srtp']): Promise<void> {
    const { log } = this.host;
    const address = this.host.localAddress(peer);
    const local = { address, port: sockets.port, sessionId: dialog.snap.sdpSession, sessionVersion: 1 };
    const crypto = srtpLevel === 'allow' ? null : { ...offerCrypto(), required: srtpLevel === 'require' };
    const answer = new Promise<string | null>((resolve) => this.lateOffers.set(dialog.id, { tx, answered: resolve }));
    tx.onNoAck = () => this.lateOffers.get(dialog.id)?.answered(null);
    this.host.uas().respond(tx, 200, { toTag: dialog.snap.localTag, headers: this.host.answerHeaders(peer, timer), body: Buffer.from(offerSdp(local, crypto ?? undefined)), contentType: SDP });
    const sdp = await answer;
    this.lateOffers.delete(dialog.id);
    const read = sdp ? negotiate(sdp, local) : null;
    const srtp: ReturnType<typeof answerSrtp> = sdp && crypto ? answerSrtp(sdp, crypto) : { ok: true };
    // The answer's a=crypto is read against our offer (answerSrtp), never answered with a key of ours.
    const neg = read?.ok && !srtp.ok ? { ok: false as const, warning: `399 switchboard "${srtp.reason}"` } : read;
    if (!neg?.ok) {
      const reason = sdp === null ? 'sip:no-ack' : 'sip:bad-answer';
      const detail = sdp === null ? '2xx never acknowledged' : sdp === '' ? 'no SDP answer in the ACK' : neg && !neg.ok ? neg.warning : 'bad answer';
      log.warn({ callId: v.callId, call: ref.callId, reason, detail }, 'late offer: no usable answer, ending the call with BYE');
      this.releaseSockets(sockets);
      await this.host.endCall(ref, reason, detail);
      dialog.transition(DialogState.Terminated);
      return this.host.byeDialog(dialog, reason);
    }
    const agreed = srtp.ok ? srtp.agreed : undefined;
    if (agreed && !weriftLoaded()) await loadWerift();
    Object.assign(dialog.snap, { remoteMedia: neg.media.remote, codec: neg.media.codec, payloadType: neg.media.payloadType, eventPayloadType: neg.media.eventPayloadType, direction: neg.media.direction, ...encryptionFields(agreed, this.host.masterKey, v.callId) });
    dialog.transition(DialogState.Confirmed);
    const rtp = new RtpSession(sockets, neg.media, `switchboard@${address}`);
    if (agreed) rtp.srtp = new SrtpContext(agreed.keys);
    const ctx = this.host.track(dialog, rtp, ref, neg.media.held);
    ctx.srtpLevel = srtpLevel;
    log.info({ callId: v.callId, call: ref.callId, codec: neg.media.codec, rtp: sockets.port, transport: peer.transport, media: agreed ? `srtp ${agreed.keys.suite}` : 'rtp' }, 'SIP call answered (late offer)');
    await this.host.recordSecurity(ref, peer.transport, agreed ? 'srtp' : 'none');
    await this.host.deps.calls.attach(ref, ctx.leg);
  }

  /** A call cancelled before the answer is still a call: received, then ended (`sip:cancel`, or `sip:no-prack`). */
  private async recordCancelled(inbound: { provider: string; providerCallId: string; from: string; to: string }, reason = 'sip:cancel'): Promise<void> {
    const callId = await this.host.deps.calls.receivedThenEnded(inbound, 'sip:invite', { reason, source: (id) => ({ caller: 'sip', id: `sip:end:${id}` }) });
    if (callId !== null) this.host.log.info({ callId: inbound.providerCallId, call: callId, reason }, 'SIP call ended before the answer');
  }
}
