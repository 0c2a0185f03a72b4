/**
 * The SIP call application on top of the UAS core: INVITE ─► number routing
 * (bridge/inbound.ts) ─► SDP answer ─► 180 ─► 200 ─► `SipLeg` attached to the
 * call manager; ACK confirms; BYE either way ends the call; CANCEL before the
 * answer ─► 487; re-INVITE ─► new media (hold/unhold, codec, address); INFO ─►
 * DTMF. A 2xx never ACKed (Timer H') ends the call with BYE. Outbound calls
 * (uac.ts) join here once answered (`adoptOutbound`): from then on BYE, INFO,
 * re-INVITE and the restart continuation treat them like inbound ones.
 * SDES-SRTP (sdes.ts, srtp.ts, srtp-call.ts): an RTP/SAVP offer is answered with our own key; the keys go into the dialog
 * snapshot sealed with the recording master key, and the far end's rollover counter is stored when it grows.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { CallControl } from '../../bridge/call-control.ts';
import { unmapped } from './cidr.ts';
import type { IngressStore } from '../port.ts';
import { Dialog, DialogState, dialogId, newTag, type DialogSnapshot } from './dialog.ts';
import { parseSipUri } from './headers.ts';
import { resumeStoredDialogs } from './resume.ts';
import { SipLeg } from './leg.ts';
import { RtpPortPool, RtpSession } from './rtp.ts';
import { currentAnswer, negotiate, type SrtpPolicy } from './sdp.ts';
import { encryptionFields, SrtpContext } from './srtp.ts';
import { callAgreement, ephemeralMasterKey, reoffer } from './srtp-call.ts';
import type { MasterKey } from '../../recording/master-key.ts';
import { InviteTxState, type InviteServerTransaction, type NonInviteServerTransaction } from './transaction.ts';
import type { Peer } from './transport.ts';
import type { SipUas, UasHandler } from './uas.ts';
import { ALLOW, type Refusal, type ValidRequest } from './validate.ts';
import { call_ended, call_held, call_media_updated, call_received, call_unheld } from '../../schema/reducers.ts';

/** What the SIP ingress needs of call control (bridge/call-control.ts). */
export type SipCallControl = Pick<CallControl, 'receive' | 'refuseUnknown' | 'receivedThenEnded' | 'attach' | 'end' | 'mediaUpdated' | 'hold' | 'resume'>;

/** The provider name of SIP calls (`calls.provider`). */
export const PROVIDER = 'sip';

export interface SipAppDeps {
  store: IngressStore;
  calls: SipCallControl;
  logger: Logger;
  rtp: RtpPortPool;
  /** Address put in SDP and Contact when bound to a wildcard (default: first non-loopback IPv4). */
  advertise?: string;
  /** Ring time between 180 and the answer (ms). */
  ringMs?: number;
  /** Media encryption the trunk asks for (SWITCHBOARD_SIP_SRTP), default `allow`. */
  srtp?: SrtpPolicy;
  /** The recording master key, which seals SRTP keys in the store (default: a per-process key — no resume of SRTP calls). */
  masterKey?: () => MasterKey;
}

interface CallCtx {
  dialog: Dialog;
  rtp: RtpSession;
  leg: SipLeg;
  ref: { tenant: string; callId: string };
  /** The INVITE transaction whose 2xx awaits its ACK. */
  awaitingAck: InviteServerTransaction | null;
  held: boolean;
}

const SDP = 'application/sdp';

export class SipApp implements UasHandler {
  private uas!: SipUas;
  private readonly dialogs = new Map<string, CallCtx>();
  /** INVITEs still proceeding, by transaction key (CANCEL finds them here). */
  private readonly ringing = new Map<string, { toTag: string }>();
  private readonly log: Logger;

  /** Seals SRTP keys for the store (deps.masterKey, loaded on first use). */
  readonly masterKey: () => MasterKey;

  constructor(private readonly deps: SipAppDeps) {
    this.log = deps.logger;
    let master: MasterKey | null = null;
    this.masterKey = () => (master ??= deps.masterKey ? deps.masterKey() : ephemeralMasterKey());
  }

  bind(uas: SipUas): void {
    this.uas = uas;
  }

  get activeDialogs(): number {
    return this.dialogs.size;
  }

  invite(tx: InviteServerTransaction, v: ValidRequest, peer: Peer): void {
    const run = v.to.params.tag ? this.reInvite(tx, v) : this.newCall(tx, v, peer);
    run.catch((err: unknown) => {
      this.log.error({ err, callId: v.callId }, 'INVITE failed');
      if (tx.state === InviteTxState.Proceeding) this.uas.respond(tx, 500);
    });
  }

  /**
   * A new INVITE to a number nobody routes is refused before any transaction exists: a stateless 404 (RFC 3261
   * §8.2.7; no 100 Trying, and no Timer G retransmissions to a source that never ACKs — a flood from a forged
   * address would otherwise get a dozen datagrams per INVITE). The refusal is recorded first (bridge/refusals.ts).
   */
  screen(v: ValidRequest, peer: Peer): Promise<Refusal> | null {
    if (v.req.method !== 'INVITE' || v.to.params.tag) return null;
    const to = this.numberFor(v);
    if (this.deps.store.read(null).numbers.findOne({ number: to })) return null;
    const inbound = { provider: PROVIDER, providerCallId: v.callId, from: v.from.uri, to, source: unmapped(peer.address) };
    return this.deps.calls
      .refuseUnknown(inbound, 'sip:invite')
      .catch((err: unknown) => this.log.warn({ err, callId: v.callId }, 'SIP unknown-number refusal not recorded'))
      .then(() => {
        // debug: a flood must not become a log line per INVITE (the refusal log has the record).
        this.log.debug({ callId: v.callId, to }, 'SIP call rejected: unknown number');
        return { status: 404, detail: 'unknown number' };
      });
  }

  ack(v: ValidRequest): void {
    const ctx = this.find(v);
    if (!ctx) return;
    ctx.awaitingAck?.acknowledged();
    ctx.awaitingAck = null;
    if (ctx.dialog.state === DialogState.Early) ctx.dialog.transition(DialogState.Confirmed);
  }

  bye(tx: NonInviteServerTransaction, v: ValidRequest): void {
    const ctx = this.find(v);
    if (!ctx) return void this.uas.respond(tx, 481);
    if (!ctx.dialog.acceptRemoteCseq(v.cseq.seq, 'BYE')) return void this.uas.respond(tx, 500, { headers: [['Retry-After', '1']] });
    this.uas.respond(tx, 200);
    this.detach(this.endByRemote(ctx, 'sip:bye'), ctx.ref.callId, 'BYE handling failed');
  }

  info(tx: NonInviteServerTransaction, v: ValidRequest): void {
    const ctx = this.find(v);
    if (!ctx) return void this.uas.respond(tx, 481);
    ctx.dialog.acceptRemoteCseq(v.cseq.seq, 'INFO');
    const type = (v.req.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const body = v.req.body.toString('utf8');
    if (v.req.body.length === 0) return void this.uas.respond(tx, 200);
    let digit: string | null = null;
    if (type === 'application/dtmf-relay') digit = /Signal\s*=\s*([0-9*#A-Da-d])/.exec(body)?.[1] ?? null;
    else if (type === 'application/dtmf') digit = /^\s*([0-9*#A-Da-d])\s*$/.exec(body)?.[1] ?? null;
    else return void this.uas.respond(tx, 415, { headers: [['Accept', 'application/dtmf-relay, application/dtmf']] });
    if (digit === null) return void this.uas.respond(tx, 400, { reason: 'Bad Request (no DTMF signal)' });
    this.uas.respond(tx, 200);
    ctx.leg.dtmf(digit, 'sip-info');
  }

  cancel(inviteTx: InviteServerTransaction): void {
    const r = this.ringing.get(inviteTx.key);
    this.uas.respond(inviteTx, 487, { toTag: r?.toTag });
  }

  /** Detaches every call without BYE (shutdown: the calls carry on after a restart). */
  close(): void {
    for (const ctx of this.dialogs.values()) {
      ctx.awaitingAck = null;
      ctx.rtp.close();
    }
    this.dialogs.clear();
  }

  /**
   * After a restart (kill -9 included): every SIP call whose leg is still connected in the store is carried on, or
   * ended with a reason when it cannot be (resume.ts). Returns how many were carried on.
   */
  resumeDialogs(): Promise<number> {
    return resumeStoredDialogs({
      store: this.deps.store,
      calls: this.deps.calls,
      rtp: this.deps.rtp,
      log: this.log,
      masterKey: this.masterKey,
      localAddress: (peer) => this.localAddress(peer),
      track: (dialog, rtp, ref, held) => this.track(dialog, rtp, ref, held).leg,
      endCall: (ref, reason, detail) => this.endCall(ref, reason, detail),
      bye: (dialog, transport, address) => {
        const { req, dest } = dialog.request('BYE', this.uas.transport.sentBy(transport, address));
        void this.uas.sendRequest(req, dest);
      },
    });
  }

  /**
   * A live call's context: its leg, its dialog in the table, and its media faults wired to the call's end — an
   * exception in an RTP socket or timer callback (media/guard.ts) ends this call with `sip:media-fault` and BYE,
   * logged once; the node and its other calls carry on.
   */
  private track(dialog: Dialog, rtp: RtpSession, ref: { tenant: string; callId: string }, held: boolean, awaitingAck: InviteServerTransaction | null = null): CallCtx {
    const ctx: CallCtx = { dialog, rtp, ref, leg: null as unknown as SipLeg, awaitingAck, held };
    ctx.leg = new SipLeg(rtp, dialog.snap, (reason) => this.detach(this.hangUp(ctx, reason), ref.callId, 'BYE not sent'));
    rtp.on('fault', (detail) => {
      this.log.error({ call: ref.callId, callId: dialog.snap.callId, detail }, 'SIP media failed: ending the call');
      this.endThenClose(ctx, 'sip:media-fault', detail);
    });
    if (rtp.srtp) rtp.srtp.onRollover = (inbound) => this.storeRollover(ctx, inbound);
    this.dialogs.set(dialog.id, ctx);
    return ctx;
  }

  /** The far end's SRTP rollover counter grew: stored, so a restart decrypts its packets from there. */
  private storeRollover(ctx: CallCtx, inbound: Array<{ ssrc: number; roc: number; seq: number }>): void {
    const snap = ctx.dialog.snap;
    if (!snap.srtp) return;
    snap.srtp = { ...snap.srtp, inbound };
    const resume = { ...snap } as unknown as Record<string, unknown>;
    this.detach(this.deps.calls.mediaUpdated(ctx.ref, { provider: PROVIDER, codec: snap.codec, resume }, { caller: 'sip:srtp-rollover' }), ctx.ref.callId, 'SRTP rollover counter not stored');
  }

  /** An answered outbound call (its dialog confirmed, its ACK sent): the leg goes to the call manager like an inbound one. */
  async adoptOutbound(o: { dialog: Dialog; rtp: RtpSession; ref: { tenant: string; callId: string } }): Promise<void> {
    const ctx = this.track(o.dialog, o.rtp, o.ref, false);
    await this.deps.calls.attach(o.ref, ctx.leg);
  }

  /** Whether `v` belongs to a live dialog of ours (Call-ID and both tags). */
  hasDialog(v: ValidRequest): boolean {
    return this.find(v) !== undefined;
  }

  private find(v: ValidRequest): CallCtx | undefined {
    return this.dialogs.get(dialogId(v.callId, v.to.params.tag ?? '', v.from.params.tag ?? ''));
  }

  /** The dialled number: the Request-URI user (or To), matched against `numbers` as is, with +, or as a SIP URI. */
  private numberFor(v: ValidRequest): string {
    const numbers = this.deps.store.read(null).numbers;
    const candidates: string[] = [];
    for (const uri of [v.req.uri, v.to.uri]) {
      const u = parseSipUri(uri);
      if (u?.user) candidates.push(u.user, /^\d+$/.test(u.user) ? `+${u.user}` : u.user, `sip:${u.user}@${u.host}`);
      else if (/^tel:/i.test(uri)) candidates.push(uri.slice(4).split(';')[0] ?? '');
    }
    return candidates.find((c) => numbers.findOne({ number: c })) ?? candidates[0] ?? v.req.uri;
  }

  /**
   * Our address as the peer should see it (SDP, Contact, Via): the bound address; bound to a wildcard,
   * SWITCHBOARD_SIP_ADVERTISE for every peer (a proxy on this host relays our SDP to phones elsewhere, so a
   * loopback peer is no exception), else 127.0.0.1 for a loopback peer, else the first external IPv4 address.
   */
  localAddress(peer: Peer): string {
    const bound = this.uas.transport.host;
    if (bound !== '0.0.0.0' && bound !== '::') return bound;
    if (this.deps.advertise) return this.deps.advertise;
    if (peer.address === '127.0.0.1' || peer.address === '::1' || peer.address.startsWith('::ffff:127.')) return '127.0.0.1';
    for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
    return '127.0.0.1';
  }

  contact(peer: Peer): string {
    const t = peer.transport === 'tcp' ? ';transport=tcp' : '';
    return `<sip:switchboard@${this.localAddress(peer)}:${this.uas.port}${t}>`;
  }

  private async newCall(tx: InviteServerTransaction, v: ValidRequest, peer: Peer): Promise<void> {
    const to = this.numberFor(v);
    const from = v.from.uri;
    const inbound = { provider: PROVIDER, providerCallId: v.callId, from, to, source: unmapped(peer.address) };
    // (Screened before the transaction; a number removed since is refused here.)
    if (!this.deps.store.read(null).numbers.findOne({ number: to })) {
      await this.deps.calls.refuseUnknown(inbound, 'sip:invite');
      this.log.info({ callId: v.callId, to }, 'SIP call rejected: unknown number');
      return void this.uas.respond(tx, 404);
    }
    if (!v.sdp) return void this.uas.respond(tx, 488, { headers: [['Warning', '399 switchboard "an SDP offer is required in the INVITE"']] });
    const sockets = await this.deps.rtp.bind().catch(() => null);
    if (!sockets) return void this.uas.respond(tx, 503, { headers: [['Retry-After', '5']] });
    const address = this.localAddress(peer);
    const sdpSession = Math.floor(Date.now() / 1000);
    const neg = negotiate(v.sdp, { address, port: sockets.port, sessionId: sdpSession, sessionVersion: 1 }, this.deps.srtp);
    const release = (): void => {
      sockets.rtp.close();
      sockets.rtcp.close();
      this.deps.rtp.release(sockets.port);
    };
    if (!neg.ok) {
      release();
      return void this.uas.respond(tx, neg.status, { headers: [['Warning', neg.warning]] });
    }
    const toTag = newTag();
    this.ringing.set(tx.key, { toTag });
    const media = { rtpPort: sockets.port, remoteMedia: neg.media.remote, codec: neg.media.codec, payloadType: neg.media.payloadType, eventPayloadType: neg.media.eventPayloadType, sdpSession, sdpVersion: 1, direction: neg.media.direction, ...encryptionFields(neg.srtp, this.masterKey, v.callId) };
    const dialog = Dialog.fromInvite(v, toTag, peer, media);
    try {
      this.uas.respond(tx, 180, { toTag, headers: [['Contact', this.contact(peer)]] });
      if (this.deps.ringMs) await new Promise((r) => setTimeout(r, this.deps.ringMs));
      if (tx.state !== InviteTxState.Proceeding) {
        release();
        return void (await this.recordCancelled(inbound)); // cancelled while ringing
      }
      const decision = await this.deps.calls.receive(inbound, 'sip:invite');
      if (tx.state !== InviteTxState.Proceeding) {
        release();
        if (decision.kind === 'accepted') await this.endCall(decision, 'sip:cancel');
        return;
      }
      if (decision.kind !== 'accepted') {
        release();
        if (decision.kind === 'transfer') return void this.uas.respond(tx, 302, { toTag, headers: [['Contact', `<${decision.target}>`]] });
        // RFC 3261 §21.5.4: overloaded, try later (a proxy fails over to another node).
        if (decision.kind === 'busy') return void this.uas.respond(tx, 503, { toTag, headers: [['Retry-After', String(decision.retryAfterS)]] });
        return void this.uas.respond(tx, decision.kind === 'rejected' ? 404 : 480, { toTag });
      }
      const ref = { tenant: decision.tenant, callId: decision.callId };
      const rtp = new RtpSession(sockets, neg.media, `switchboard@${address}`);
      if (neg.srtp) rtp.srtp = new SrtpContext(neg.srtp.keys);
      const ctx = this.track(dialog, rtp, ref, neg.media.held, tx);
      rtp.on('latched', (at) => this.log.debug({ callId: v.callId, at }, 'RTP latched'));
      tx.onNoAck = () => {
        this.log.warn({ callId: v.callId }, '2xx never acknowledged: ending the call with BYE');
        this.endThenClose(ctx, 'sip:no-ack');
      };
      this.uas.respond(tx, 200, { toTag, headers: this.answerHeaders(v, peer), body: Buffer.from(neg.answer), contentType: SDP });
      this.log.info({ callId: v.callId, call: ref.callId, codec: neg.media.codec, rtp: sockets.port, media: neg.srtp ? `srtp ${neg.srtp.keys.suite}` : 'rtp' }, 'SIP call answered');
      await this.deps.calls.attach(ref, ctx.leg);
    } finally {
      this.ringing.delete(tx.key);
    }
  }

  private answerHeaders(v: ValidRequest, peer: Peer): Array<[string, string]> {
    const headers: Array<[string, string]> = [
      ['Contact', this.contact(peer)],
      ['Allow', ALLOW.join(', ')],
      ['Supported', 'timer'],
    ];
    // Session timers (RFC 4028), tolerated: the far end refreshes; we only echo the interval.
    const se = v.req.headers.get('session-expires');
    if (se) {
      const secs = /^\s*(\d+)/.exec(se)?.[1];
      if (secs) headers.push(['Session-Expires', `${secs};refresher=uac`], ['Require', 'timer']);
    }
    return headers;
  }

  private async reInvite(tx: InviteServerTransaction, v: ValidRequest): Promise<void> {
    const ctx = this.find(v);
    if (!ctx) return void this.uas.respond(tx, 481);
    if (!ctx.dialog.acceptRemoteCseq(v.cseq.seq, 'INVITE')) return void this.uas.respond(tx, 500, { headers: [['Retry-After', '1']] });
    if (ctx.awaitingAck) return void this.uas.respond(tx, 491);
    const snap = ctx.dialog.snap;
    const peer: Peer = { transport: snap.transport, address: snap.peer.address, port: snap.peer.port };
    const address = this.localAddress(peer);
    let answer: string;
    if (v.sdp) {
      const neg = negotiate(v.sdp, { address, port: ctx.rtp.port, sessionId: snap.sdpSession, sessionVersion: snap.sdpVersion + 1 }, this.deps.srtp, ctx.rtp.srtp?.keys);
      if (!neg.ok) return void this.uas.respond(tx, neg.status, { headers: [['Warning', neg.warning]] });
      const srtp = reoffer(ctx.rtp, snap, neg.srtp, this.masterKey); // an SRTP call is never downgraded (srtp-call.ts)
      if (!srtp.ok) return void this.uas.respond(tx, 488, { headers: [['Warning', srtp.warning]] });
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
      // The new media is committed before it is answered or used: a restart carries on with what was agreed.
      const stored = await this.deps.calls.mediaUpdated(ctx.ref, { provider: PROVIDER, codec: next.codec, resume: { ...next } as unknown as Record<string, unknown> }, { caller: 'sip:reinvite' });
      if (!stored.ok) {
        this.log.warn({ outcome: stored, call: ctx.ref.callId }, 're-INVITE: media change not recorded; refused');
        return void this.uas.respond(tx, 500, { headers: [['Retry-After', '1']] });
      }
      Object.assign(snap, next);
      srtp.apply(ctx.rtp, (inbound) => this.storeRollover(ctx, inbound));
      ctx.rtp.update(neg.media);
      ctx.leg.updateMedia();
      answer = neg.answer;
      if (neg.media.held !== ctx.held) {
        ctx.held = neg.media.held;
        const r = await this.deps.calls.hold(ctx.ref, ctx.held, { caller: 'sip:reinvite' });
        if (!r.ok) this.log.info({ outcome: r, held: ctx.held }, 'hold state not recorded');
      }
    } else {
      // A refresh without an offer: our current session as the offer (the ACK's answer is ignored).
      answer = currentAnswer(ctx.dialog.snap, ctx.rtp.port, ctx.held, address, callAgreement(ctx.rtp, ctx.dialog.snap));
    }
    ctx.awaitingAck = tx;
    tx.onNoAck = () => {
      ctx.awaitingAck = null;
      this.endThenClose(ctx, 'sip:no-ack');
    };
    this.uas.respond(tx, 200, { headers: this.answerHeaders(v, peer), body: Buffer.from(answer), contentType: SDP });
  }

  /** A call cancelled before the answer is still a call: received, then ended (`sip:cancel`). */
  private async recordCancelled(inbound: { provider: string; providerCallId: string; from: string; to: string }): Promise<void> {
    const callId = await this.deps.calls.receivedThenEnded(inbound, 'sip:invite', { reason: 'sip:cancel', source: (id) => ({ caller: 'sip', id: `sip:end:${id}` }) });
    if (callId !== null) this.log.info({ callId: inbound.providerCallId, call: callId }, 'SIP call cancelled before the answer');
  }

  /** Ends the call through call control (`call_ended`, idempotent per call), which also stops its session. */
  private async endCall(ref: { tenant: string; callId: string }, reason: string, detail?: string): Promise<void> {
    if (detail !== undefined) this.log.info({ call: ref.callId, reason, detail }, 'SIP call ending');
    await this.deps.calls.end(ref, reason, { caller: 'sip', id: `sip:end:${ref.callId}` });
  }

  /** `call_ended` with `reason`, then the leg closes (BYE); a failure is logged, never left as an unhandled rejection. */
  private endThenClose(ctx: CallCtx, reason: string, detail?: string): void {
    const run = async (): Promise<void> => {
      await this.endCall(ctx.ref, reason, detail).catch((err: unknown) => this.log.error({ err, call: ctx.ref.callId }, 'call_ended not recorded'));
      this.endLocally(ctx, reason);
    };
    this.detach(run(), ctx.ref.callId, `ending the call (${reason}) failed`);
  }

  /** Runs a promise nobody awaits: its failure is logged with the call, never an unhandled rejection. */
  private detach(p: Promise<unknown>, call: string, what: string): void {
    p.catch((err: unknown) => this.log.error({ err, call }, what));
  }

  /** The call is over on our side (already ended through call control, which stopped its session): the leg closes and sends BYE. */
  private endLocally(ctx: CallCtx, reason: string): void {
    if (!ctx.leg.closed) ctx.leg.close(reason);
  }

  private async endByRemote(ctx: CallCtx, reason: string): Promise<void> {
    ctx.dialog.transition(DialogState.Terminated);
    this.forget(ctx);
    ctx.leg.markRemoteEnded();
    await this.endCall(ctx.ref, reason);
    if (!ctx.leg.closed) ctx.leg.remoteHangup(reason);
  }

  /** Our side ends the call: BYE (with retransmissions over UDP). */
  private async hangUp(ctx: CallCtx, reason: string): Promise<void> {
    this.forget(ctx);
    if (ctx.dialog.state === DialogState.Terminated) return;
    ctx.dialog.transition(DialogState.Terminated);
    const snap = ctx.dialog.snap;
    const sentBy = this.uas.transport.sentBy(snap.transport, this.localAddress({ transport: snap.transport, address: snap.peer.address, port: snap.peer.port }));
    const { req, dest } = ctx.dialog.request('BYE', sentBy, {});
    req.headers.add('reason', `SIP;cause=200;text="${reason.replace(/["\\]/g, '').slice(0, 80)}"`);
    const status = await this.uas.sendRequest(req, dest);
    this.log.info({ callId: snap.callId, status, reason }, 'BYE sent');
  }

  private forget(ctx: CallCtx): void {
    if (this.dialogs.get(ctx.dialog.id) === ctx) this.dialogs.delete(ctx.dialog.id);
    ctx.awaitingAck = null;
    this.deps.rtp.release(ctx.rtp.port);
  }
}
