/**
 * UPDATE in an early dialog (RFC 3311 §5.2), for new-call.ts: an inbound call that is still ringing — our 18x with
 * its To tag sent, no 200 yet — may have its media renegotiated by the caller before the answer.
 *
 *   UPDATE (To tag = one of our ringing calls) ─► CSeq in order (else 500)
 *     ├─ no body ─────────────────────────────────────────────────────────────► 200
 *     ├─ offer, offer/answer of the INVITE not complete (a late offer; a 180 without SDP; a reliable 183 not yet
 *     │  PRACKed) ─────────────────────────────────────────────────────────────► 491
 *     └─ offer after our 183 + SDP answer (unreliable, or reliable and PRACKed): negotiated under the call's SRTP
 *        level (an SRTP call is never downgraded: 488) ─► 200 + our answer; the early media (the prompt) follows
 *        the new address and codec at once, and the 200 to the INVITE carries this answer
 *
 * As UAC (uac.ts, an outbound call still ringing) the callee may do the same: an UPDATE with an offer after its 18x
 * brought the answer to our INVITE's offer is answered 200 with ours (under the route's SRTP level), and that
 * offer/answer is the one the call runs with once answered (`outboundEarlyUpdate`); before any 18x with SDP, 491.
 *
 * Nothing is written to the store here: the call row is made when the call is answered, with the dialog as it is then.
 */
import type { Dialog } from './dialog.ts';
import type { EncryptionPolicy } from './encryption-policy.ts';
import type { MasterKey } from '../../recording/master-key.ts';
import type { RtpSession } from './rtp.ts';
import { negotiate, type Negotiation } from './sdp.ts';
import { encryptionFields, sameKeys, SrtpContext } from './srtp.ts';
import type { NonInviteServerTransaction } from './transaction.ts';
import type { Peer } from './transport.ts';
import type { SipUas } from './uas.ts';
import type { ValidRequest } from './validate.ts';

type Agreed = Extract<Negotiation, { ok: true }>;

/** A ringing inbound call's early dialog (new-call.ts keeps one per call until its final response). */
export interface EarlyDialog {
  dialog: Dialog;
  peer: Peer;
  /** The RTP port the call's media uses. */
  rtpPort: number;
  srtpLevel: EncryptionPolicy['srtp'];
  /** The offer/answer in force: the INVITE's, then each early UPDATE's; null for a late offer (nothing negotiated yet). */
  neg: Agreed | null;
  /** Our 183 with the SDP answer went out (reliable: and was PRACKed), so the INVITE's offer/answer is complete. */
  complete: boolean;
  /** The early media session, once the prompt plays. */
  rtp: RtpSession | null;
}

export interface EarlyUpdateHost {
  uas(): SipUas;
  localAddress(peer: Peer): string;
  contact(peer: Peer): string;
  masterKey(): MasterKey;
}

const SDP = 'application/sdp';

/** Answers an UPDATE in `early` (see the diagram above). */
export function earlyUpdate(host: EarlyUpdateHost, early: EarlyDialog, tx: NonInviteServerTransaction, v: ValidRequest): void {
  const uas = host.uas();
  const snap = early.dialog.snap;
  if (!early.dialog.acceptRemoteCseq(v.cseq.seq, 'UPDATE')) return void uas.respond(tx, 500, { headers: [['Retry-After', '1']] });
  const headers: Array<[string, string]> = [['Contact', host.contact(early.peer)]];
  if (!v.sdp) return void uas.respond(tx, 200, { headers });
  if (!early.complete || !early.neg) return void uas.respond(tx, 491, { reason: 'Request Pending (the INVITE offer/answer is not complete)' });
  const current = early.neg.srtp;
  const local = { address: host.localAddress(early.peer), port: early.rtpPort, sessionId: snap.sdpSession, sessionVersion: snap.sdpVersion + 1 };
  const level = current && early.srtpLevel === 'allow' ? 'prefer' : early.srtpLevel;
  const neg = negotiate(v.sdp, local, level, current?.keys);
  if (!neg.ok) return void uas.respond(tx, neg.status, { headers: [['Warning', neg.warning]] });
  if (current && !neg.srtp) return void uas.respond(tx, 488, { headers: [['Warning', '399 switchboard "this call is SRTP: a new offer must keep RTP/SAVP with a=crypto"']] });
  const rekeyed = neg.srtp && !(current && sameKeys(current.keys, neg.srtp.keys));
  Object.assign(snap, {
    sdpVersion: snap.sdpVersion + 1,
    remoteMedia: neg.media.remote,
    codec: neg.media.codec,
    payloadType: neg.media.payloadType,
    eventPayloadType: neg.media.eventPayloadType,
    direction: neg.media.direction,
    ...(rekeyed ? encryptionFields(neg.srtp, () => host.masterKey(), snap.callId) : current && snap.srtp ? { srtp: { ...snap.srtp, tag: neg.srtp!.tag } } : {}),
  });
  early.neg = neg;
  if (early.rtp) {
    if (rekeyed && neg.srtp) early.rtp.srtp = new SrtpContext(neg.srtp.keys);
    early.rtp.update(neg.media);
  }
  uas.respond(tx, 200, { headers, body: Buffer.from(neg.answer), contentType: SDP });
}

/** An outbound call still ringing (uac.ts `Attempt`), as an UPDATE from the callee in its early dialog sees it. */
export interface OutboundEarly {
  local: string;
  sockets: { port: number };
  sdpSession: number;
  /** Our SDP version (the INVITE's offer is 1). */
  sdpVersion: number;
  /** An 18x with SDP — the answer to our INVITE's offer — came: the early offer/answer is complete. */
  earlyAnswer: boolean;
  /** The offer/answer of the callee's last early UPDATE: the call runs with it once answered. */
  early: Agreed | null;
}

/** Answers the callee's UPDATE in the early dialog of outbound call `o` (see the header). */
export function outboundEarlyUpdate(uas: SipUas, contact: string, srtpLevel: EncryptionPolicy['srtp'], o: OutboundEarly, tx: NonInviteServerTransaction, v: ValidRequest): void {
  const headers: Array<[string, string]> = [['Contact', contact]];
  if (!v.sdp) return void uas.respond(tx, 200, { headers });
  if (!o.earlyAnswer) return void uas.respond(tx, 491, { reason: 'Request Pending (no answer to our offer yet)' });
  const neg = negotiate(v.sdp, { address: o.local, port: o.sockets.port, sessionId: o.sdpSession, sessionVersion: o.sdpVersion + 1 }, srtpLevel);
  if (!neg.ok) return void uas.respond(tx, neg.status, { headers: [['Warning', neg.warning]] });
  o.sdpVersion++;
  o.early = neg;
  uas.respond(tx, 200, { headers, body: Buffer.from(neg.answer), contentType: SDP });
}
