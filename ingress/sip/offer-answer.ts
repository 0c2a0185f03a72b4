/**
 * Offer/answer in a live SIP call, for app.ts (the request router): a re-INVITE or an UPDATE in a confirmed dialog
 * (with an SDP offer, or without one: a session refresh, RFC 4028), and the SRTP state that follows an offer.
 *
 *   re-INVITE ─► CSeq in order (else 500) ─► 491 while an INVITE of ours awaits its ACK ─► 422 below our Min-SE
 *     ─► offer: `applyOffer` │ no offer: our current session as the offer ─► 200 (the ACK ends it; none: BYE)
 *   UPDATE    ─► CSeq in order ─► 422 below our Min-SE ─► offer: 491 while our 2xx awaits its ACK, else `applyOffer`
 *     ─► 200 (with the answer when there was an offer)
 *
 *   re-INVITE / UPDATE with SDP ─► negotiate under the call's SRTP level (`srtpLevel`, with its current keys)
 *     ─► srtp-call.ts `reoffer`: an SRTP call is never downgraded (488 + Warning); a re-key gets a new context that
 *        keeps the far end's rollover counters
 *     ─► `call_media_updated` with the new dialog snapshot (a restart carries on with what was agreed; a refusal ─► 500)
 *     ─► the RTP session, the leg and the hold state follow the offer
 *
 * It also stores the far end's SRTP rollover counter when it grows (`storeRollover`), so a restart decrypts from there.
 */
import type { Logger } from 'pino';
import type { DialogSnapshot } from './dialog.ts';
import type { EncryptionPolicy } from './encryption-policy.ts';
import { currentAnswer, negotiate } from './sdp.ts';
import type { SessionRefresher } from './refresh.ts';
import { negotiateUas, uasTimerHeaders, type UasTimerDecision } from './session-timer.ts';
import { callAgreement, reoffer } from './srtp-call.ts';
import type { InviteServerTransaction, NonInviteServerTransaction } from './transaction.ts';
import type { SipUas } from './uas.ts';
import type { ValidRequest } from './validate.ts';
import type { MasterKey } from '../../recording/master-key.ts';
import type { Peer } from './transport.ts';
import { PROVIDER, type CallCtx, type SipCallControl } from './app.ts';

export type OfferResult = { ok: true; answer: string } | { ok: false; status: number; headers: Array<[string, string]> };

/** What offer/answer needs of the app. */
export interface OfferHost {
  calls: Pick<SipCallControl, 'mediaUpdated' | 'hold'>;
  log: Logger;
  uas(): SipUas;
  minSe(): number;
  /** The session timers of the live calls: a re-INVITE or UPDATE is a refresh too (RFC 4028). */
  timers: Pick<SessionRefresher<CallCtx>, 'apply'>;
  masterKey(): MasterKey;
  localAddress(peer: Peer): string;
  contact(peer: Peer): string;
  answerHeaders(peer: Peer, timer: UasTimerDecision): Array<[string, string]>;
  endThenClose(ctx: CallCtx, reason: string, detail?: string): void;
  detach(p: Promise<unknown>, call: string, what: string): void;
}

const SDP = 'application/sdp';
const peerOf = (snap: DialogSnapshot): Peer => ({ transport: snap.transport, address: snap.peer.address, port: snap.peer.port });

export class OfferAnswer {
  constructor(private readonly host: OfferHost) {}

  /**
   * A re-INVITE in a confirmed dialog (491 while an INVITE of ours awaits its ACK, 422 below our Min-SE): an offer
   * goes through `applyOffer`; without one it is a refresh, answered with our current session as the offer.
   */
  async reInvite(tx: InviteServerTransaction, v: ValidRequest, ctx: CallCtx): Promise<void> {
    const uas = this.host.uas();
    if (!ctx.dialog.acceptRemoteCseq(v.cseq.seq, 'INVITE')) return void uas.respond(tx, 500, { headers: [['Retry-After', '1']] });
    if (ctx.awaitingAck) return void uas.respond(tx, 491);
    const timer = negotiateUas(v.req.headers, this.host.minSe());
    if (timer.kind === 'too-small') return void uas.respond(tx, 422, { headers: [['Min-SE', String(timer.minSe)]] });
    const peer = peerOf(ctx.dialog.snap);
    let answer: string;
    if (v.sdp) {
      const r = await this.applyOffer(ctx, v.sdp, 'sip:reinvite');
      if (!r.ok) return void uas.respond(tx, r.status, { headers: r.headers });
      answer = r.answer;
    } else {
      // A refresh without an offer: our current session as the offer, our current key in it (the ACK's answer is ignored).
      answer = currentAnswer(ctx.dialog.snap, ctx.rtp.port, ctx.held, this.host.localAddress(peer), callAgreement(ctx.rtp, ctx.dialog.snap));
    }
    this.host.timers.apply(ctx, timer);
    ctx.awaitingAck = tx;
    tx.onNoAck = () => {
      ctx.awaitingAck = null;
      this.host.endThenClose(ctx, 'sip:no-ack');
    };
    uas.respond(tx, 200, { headers: this.host.answerHeaders(peer, timer), body: Buffer.from(answer), contentType: SDP });
  }

  /**
   * UPDATE (RFC 3311 §5.2) in a confirmed dialog: an offer is answered like a re-INVITE's (491 while an INVITE of
   * ours awaits its ACK); without a body it refreshes the session (RFC 4028).
   */
  update(tx: NonInviteServerTransaction, v: ValidRequest, ctx: CallCtx): void {
    const uas = this.host.uas();
    if (!ctx.dialog.acceptRemoteCseq(v.cseq.seq, 'UPDATE')) return void uas.respond(tx, 500, { headers: [['Retry-After', '1']] });
    const timer = negotiateUas(v.req.headers, this.host.minSe());
    if (timer.kind === 'too-small') return void uas.respond(tx, 422, { headers: [['Min-SE', String(timer.minSe)]] });
    const run = async (): Promise<void> => {
      let answer: string | undefined;
      if (v.sdp) {
        if (ctx.awaitingAck) return void uas.respond(tx, 491);
        const r = await this.applyOffer(ctx, v.sdp, 'sip:update');
        if (!r.ok) return void uas.respond(tx, r.status, { headers: r.headers });
        answer = r.answer;
      }
      this.host.timers.apply(ctx, timer);
      const headers: Array<[string, string]> = [['Contact', this.host.contact(peerOf(ctx.dialog.snap))], ...uasTimerHeaders(timer)];
      uas.respond(tx, 200, { headers, ...(answer ? { body: Buffer.from(answer), contentType: SDP } : {}) });
    };
    this.host.detach(run(), ctx.ref.callId, 'UPDATE handling failed');
  }

  /**
   * The SDP half of a re-INVITE or UPDATE with an offer: negotiated (under the call's SRTP half of the encryption
   * policy, with its current keys), checked against the call's SRTP (srtp-call.ts: an SRTP call is never downgraded,
   * 488; a re-key gets a new context that keeps the far end's rollover counters), committed to the store (a restart
   * carries on with what was agreed), then used; the hold state follows the offer's direction.
   */
  async applyOffer(ctx: CallCtx, offer: string, caller: string): Promise<OfferResult> {
    const snap = ctx.dialog.snap;
    const address = this.host.localAddress(peerOf(snap));
    const neg = negotiate(offer, { address, port: ctx.rtp.port, sessionId: snap.sdpSession, sessionVersion: snap.sdpVersion + 1 }, this.srtpLevel(ctx), ctx.rtp.srtp?.keys);
    if (!neg.ok) return { ok: false, status: neg.status, headers: [['Warning', neg.warning]] };
    const srtp = reoffer(ctx.rtp, snap, neg.srtp, () => this.host.masterKey());
    if (!srtp.ok) return { ok: false, status: 488, headers: [['Warning', srtp.warning]] };
    const next: DialogSnapshot = {
      ...snap,
      sdpVersion: snap.sdpVersion + 1,
      remoteMedia: neg.media.remote,
      codec: neg.media.codec,
      payloadType: neg.media.payloadType,
      eventPayloadType: neg.media.eventPayloadType,
      direction: neg.media.direction,
      ...srtp.fields,
    };
    const stored = await this.host.calls.mediaUpdated(ctx.ref, { provider: PROVIDER, codec: next.codec, resume: { ...next } as unknown as Record<string, unknown> }, { caller });
    if (!stored.ok) {
      this.host.log.warn({ outcome: stored, call: ctx.ref.callId, caller }, 'media change not recorded; refused');
      return { ok: false, status: 500, headers: [['Retry-After', '1']] };
    }
    Object.assign(snap, next);
    srtp.apply(ctx.rtp, (inbound) => this.storeRollover(ctx, inbound));
    ctx.rtp.update(neg.media);
    ctx.leg.updateMedia();
    if (neg.media.held !== ctx.held) {
      ctx.held = neg.media.held;
      const r = await this.host.calls.hold(ctx.ref, ctx.held, { caller });
      if (!r.ok) this.host.log.info({ outcome: r, held: ctx.held }, 'hold state not recorded');
    }
    return { ok: true, answer: neg.answer };
  }

  /**
   * The SRTP level a live call's re-offers are negotiated under: the level it was set up with (inbound: its trunk and
   * route, `encryptionFor`; outbound: `route.encryption.srtp`; resumed after a restart: `allow`), at least `prefer`
   * while the call is SRTP, so a re-offer with a=crypto in RTP/AVP keeps it encrypted rather than refused.
   */
  srtpLevel(ctx: CallCtx): EncryptionPolicy['srtp'] {
    return ctx.rtp.srtp && ctx.srtpLevel === 'allow' ? 'prefer' : ctx.srtpLevel;
  }

  /** The far end's SRTP rollover counter grew: stored, so a restart decrypts its packets from there. */
  storeRollover(ctx: CallCtx, inbound: Array<{ ssrc: number; roc: number; seq: number }>): void {
    const snap = ctx.dialog.snap;
    if (!snap.srtp) return;
    snap.srtp = { ...snap.srtp, inbound };
    const resume = { ...snap } as unknown as Record<string, unknown>;
    this.host.detach(this.host.calls.mediaUpdated(ctx.ref, { provider: PROVIDER, codec: snap.codec, resume }, { caller: 'sip:srtp-rollover' }), ctx.ref.callId, 'SRTP rollover counter not stored');
  }
}
