/**
 * SRTP in a live SIP call, for app.ts: which agreement a call runs with (its key and the a=crypto tag our answers
 * echo), and what a re-offer does to it —
 *
 *   encrypted call, re-offer without a=crypto ─► refused (488): an SRTP call is never downgraded
 *   same keys both ways                        ─► the stored keys kept, the tag echoed
 *   new keys (the far end re-keyed, or SRTP starts on a plain call) ─► sealed again, a new werift context that keeps
 *                                                 the far end's rollover counters
 */
import crypto from 'node:crypto';
import { masterKeyFromBytes, type MasterKey } from '../../recording/master-key.ts';
import type { DialogSnapshot } from './dialog.ts';
import type { RtpSession } from './rtp.ts';
import type { SrtpAgreement } from './sdp.ts';
import { encryptionFields, sameKeys, SrtpContext, type InboundState } from './srtp.ts';

/** A master key for this process only (no data directory given): SRTP calls work, but cannot resume after a restart. */
export function ephemeralMasterKey(): MasterKey {
  return masterKeyFromBytes(crypto.randomBytes(32));
}

/** The SDES agreement a live call runs with; undefined for plain RTP. */
export function callAgreement(rtp: RtpSession, snap: DialogSnapshot): SrtpAgreement | undefined {
  const tag = snap.srtp?.tag;
  return rtp.srtp && tag !== undefined ? { tag, keys: rtp.srtp.keys } : undefined;
}

export type Reoffer = { ok: false; warning: string } | { ok: true; fields: Partial<Pick<DialogSnapshot, 'srtp' | 'mediaEncryption'>>; apply(rtp: RtpSession, onRollover: (s: InboundState[]) => void): void };

/** What a re-offer (negotiated as `offered`) does to a call running `rtp` with the snapshot `snap`. */
export function reoffer(rtp: RtpSession, snap: DialogSnapshot, offered: SrtpAgreement | undefined, master: () => MasterKey): Reoffer {
  const current = rtp.srtp?.keys;
  if (current && !offered) return { ok: false, warning: '399 switchboard "this call is SRTP: a new offer must keep RTP/SAVP with a=crypto"' };
  if (!offered) return { ok: true, fields: {}, apply: () => undefined };
  if (current && sameKeys(current, offered.keys)) return { ok: true, fields: snap.srtp ? { srtp: { ...snap.srtp, tag: offered.tag } } : {}, apply: () => undefined };
  return {
    ok: true,
    fields: encryptionFields(offered, master, snap.callId),
    apply: (session, onRollover) => {
      const fresh = new SrtpContext(offered.keys);
      fresh.restore(session.srtp?.inbound() ?? []);
      fresh.onRollover = onRollover;
      session.srtp = fresh;
    },
  };
}
