/**
 * The SIP call application on top of the UAS core: INVITE ─► number routing
 * (bridge/inbound.ts) ─► SDP answer ─► 180 ─► 200 ─► `SipLeg` attached to the
 * call manager; ACK confirms; BYE either way ends the call; CANCEL before the
 * answer ─► 487; re-INVITE ─► new media (hold/unhold, codec, address); INFO ─►
 * DTMF. A 2xx never ACKed (Timer H') ends the call with BYE. Interop (RFC list in the README):
 * late offer (an INVITE without SDP gets our offer in the 200 and its answer in the ACK — none or a bad one: BYE,
 * `sip:bad-answer`), reliable provisionals (prack.ts: the 180 waits for its PRACK before the 200), UPDATE
 * (RFC 3311: an offer goes the re-INVITE's way, offer-answer.ts `applyOffer`; no body = a refresh; before the answer, early-update.ts) and session timers
 * (session-timer.ts: 422 below Min-SE, refresh as refresher with refresh.ts, BYE `sip:session-expired` when the
 * peer's refresh never comes). Offers in a live call (re-INVITE, UPDATE) and the SRTP state they change are
 * offer-answer.ts; this file routes the requests to it. Outbound calls
 * (uac.ts) join here once answered (`adoptOutbound`): from then on BYE, INFO,
 * re-INVITE and the restart continuation treat them like inbound ones.
 * A new call, from the INVITE to the attached leg (late offer and early media included), is new-call.ts.
 * REFER (refer.ts, SWITCHBOARD_SIP_REFER): a blind transfer goes out as REFER on routes that say `transfer` (the
 * NOTIFYs that follow are answered here); a REFER from the far end is acted on where the route says `accept`
 * (refer-accept.ts: a bridged human hands the call onward), else refused 403.
 *
 * Encryption (encryption-policy.ts): `screen` refuses an INVITE that came in clear on a trunk or route whose
 * policy requires TLS (403 + Warning, a `call_rejected`, no call row); `encryptionFor` gives SDES-SRTP (sdes.ts,
 * srtp.ts, srtp-call.ts) the media half of the policy (`require`: a plain offer gets 488 + Warning); an answered
 * call records its transport and media encryption (`recordSecurity`). SRTP keys go into the dialog snapshot sealed
 * with the recording master key, the far end's rollover counter is stored when it grows, and a re-INVITE or UPDATE
 * never downgrades an SRTP call (offer-answer.ts).
 *
 * RTP inactivity (rtp-timeout.ts): an answered or resumed call whose far end sends no RTP for
 * SWITCHBOARD_SIP_RTP_TIMEOUT_MS (SWITCHBOARD_SIP_RTP_HOLD_TIMEOUT_MS while it holds the call) ends `sip:rtp-timeout`
 * with BYE (`Reason: SIP;cause=408;text="RTP timeout"`).
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { CallControl } from '../../bridge/call-control.ts';
import { unmapped } from './cidr.ts';
import type { IngressStore } from '../port.ts';
import { loadWerift, sdpWantsSrtp, weriftLoaded } from '../werift.ts';
import { EncryptionPolicies, type EncryptionPolicy } from './encryption-policy.ts';
import { Dialog, DialogState, dialogId } from './dialog.ts';
import { resumeStoredDialogs } from './resume.ts';
import { SipTakeover } from './takeover.ts';
import { SipLeg } from './leg.ts';
import { RtpPortPool, RtpSession } from './rtp.ts';
import { OfferAnswer } from './offer-answer.ts';
import type { EarlyMediaRoutes } from './early-media.ts';
import { NewCalls } from './new-call.ts';
import { ephemeralMasterKey } from './srtp-call.ts';
import type { MasterKey } from '../../recording/master-key.ts';
import { InviteTxState, type InviteServerTransaction, type NonInviteServerTransaction } from './transaction.ts';
import type { Peer } from './transport.ts';
import type { SipUas, UasHandler } from './uas.ts';
import { ALLOW, SUPPORTED, type Refusal, type ValidRequest } from './validate.ts';
import { parseRAck } from './prack.ts';
import { SessionRefresher } from './refresh.ts';
import { ReferRoutes, SipRefers, referKey } from './refer.ts';
import { acceptRefer, REFERRED_REASON } from './refer-accept.ts';
import type { SipRequest } from './message.ts';
import { RFC_MIN_SE, type SessionTimer, uasTimerHeaders, type UasTimerDecision } from './session-timer.ts';
import { byeReason, DEFAULT_RTP_TIMEOUT, RTP_TIMEOUT_REASON, RtpInactivity, type RtpTimeoutLimits } from './rtp-timeout.ts';
import { call_ended, call_held, call_media_updated, call_received, call_unheld } from '../../schema/reducers.ts';

/** What the SIP ingress needs of call control (bridge/call-control.ts). */
export type SipCallControl = Pick<CallControl, 'receive' | 'refuseUnknown' | 'refuseByPolicy' | 'recordSecurity' | 'receivedThenEnded' | 'attach' | 'end' | 'mediaUpdated' | 'mediaLost' | 'hold' | 'resume'> & Partial<Pick<CallControl, 'referred'>>;

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
  /** Session timers: the smallest Session-Expires accepted, seconds (default 90, RFC 4028 §4). */
  minSe?: number;
  /** Early media per trunk and route (early-media.ts): the prompt played after 183 + SDP, before the 200; none = 180 Ringing. */
  earlyMedia?: EarlyMediaRoutes;
  /** TLS/SRTP policy per trunk and route (SWITCHBOARD_SIP_ENCRYPTION); absent = allow everything. */
  encryption?: EncryptionPolicies;
  /** The recording master key, which seals SRTP keys in the store (default: a per-process key — no resume of SRTP calls). */
  masterKey?: () => MasterKey;
  /** RTP inactivity limits (SWITCHBOARD_SIP_RTP_TIMEOUT_MS, SWITCHBOARD_SIP_RTP_HOLD_TIMEOUT_MS); default 60 s, never while held. */
  rtpTimeout?: RtpTimeoutLimits;
  /** REFER per trunk and route (SWITCHBOARD_SIP_REFER, refer.ts); absent = blind transfers impossible, REFER refused. */
  refer?: ReferRoutes;
}

export interface CallCtx {
  dialog: Dialog;
  rtp: RtpSession;
  leg: SipLeg;
  ref: { tenant: string; callId: string };
  /** The INVITE transaction whose 2xx awaits its ACK. */
  awaitingAck: InviteServerTransaction | null;
  held: boolean;
  /** The session timer (RFC 4028), while one was negotiated. */
  timer: SessionTimer | null;
  /** The SRTP half of the encryption policy the call was set up under (re-offers, `srtpLevel`). */
  srtpLevel: EncryptionPolicy['srtp'];
  /** A takeover's leg before its claim is granted (takeover.ts): closed meanwhile, it sends no BYE. */
  claimPending?: boolean;
  /** The RTP inactivity watch (rtp-timeout.ts), from the answer (or the resume) until the call ends. */
  rtpWatch?: RtpInactivity;
}

export class SipApp implements UasHandler {
  private uas!: SipUas;
  private readonly dialogs = new Map<string, CallCtx>();
  /** New calls: ringing INVITEs, reliable provisionals, late offers (new-call.ts). */
  private readonly calls: NewCalls;
  private readonly log: Logger;
  /** Session timers of the live calls (refresh.ts). */
  private readonly timers: SessionRefresher<CallCtx>;
  /** Offers in live calls: re-INVITE and UPDATE with SDP, SRTP re-keys (offer-answer.ts). */
  private readonly offers: OfferAnswer;
  /** Blind transfers by REFER in flight, and the answers to REFER and NOTIFY (refer.ts). */
  private readonly refers: SipRefers;
  /** The calls of dead nodes taken over (cluster mode, takeover.ts). */
  private takeover: SipTakeover<CallCtx> | null = null;

  /** Outbound calls still ringing (uac.ts, set by index.ts): the callee's UPDATE in their early dialog. */
  outboundEarly: { has(v: ValidRequest): boolean; update(tx: NonInviteServerTransaction, v: ValidRequest): boolean } | null = null;

  /** Seals SRTP keys for the store (deps.masterKey, loaded on first use). */
  readonly masterKey: () => MasterKey;

  constructor(private readonly deps: SipAppDeps) {
    this.log = deps.logger;
    let master: MasterKey | null = null;
    this.masterKey = () => (master ??= deps.masterKey ? deps.masterKey() : ephemeralMasterKey());
    this.timers = new SessionRefresher<CallCtx>({
      uas: () => this.uas,
      log: this.log,
      minSe: this.minSe,
      localAddress: (peer) => this.localAddress(peer),
      contact: (peer) => this.contact(peer),
      end: (ctx, reason, detail) => this.endThenClose(ctx, reason, detail),
      detach: (p, call, what) => this.detach(p, call, what),
    });
    this.offers = new OfferAnswer({
      calls: deps.calls,
      log: this.log,
      uas: () => this.uas,
      minSe: () => this.minSe,
      timers: this.timers,
      masterKey: this.masterKey,
      localAddress: (peer) => this.localAddress(peer),
      contact: (peer) => this.contact(peer),
      answerHeaders: (peer, timer) => this.answerHeaders(peer, timer),
      endThenClose: (ctx, reason, detail) => this.endThenClose(ctx, reason, detail),
      detach: (p, call, what) => this.detach(p, call, what),
    });
    this.refers = new SipRefers({ log: this.log, send: (dialog, build) => this.inDialog(dialog, 'REFER', build), respond: (tx, status, opts) => void this.uas.respond(tx, status, opts) });
    this.calls = new NewCalls({
      deps,
      log: this.log,
      uas: () => this.uas,
      minSe: () => this.minSe,
      masterKey: this.masterKey,
      encryptionFor: (v, peer) => this.encryptionFor(v, peer),
      localAddress: (peer) => this.localAddress(peer),
      contact: (peer) => this.contact(peer),
      answerHeaders: (peer, timer) => this.answerHeaders(peer, timer),
      track: (dialog, rtp, ref, held, tx) => this.track(dialog, rtp, ref, held, tx),
      recordSecurity: (ref, transport, enc) => this.recordSecurity(ref, transport, enc),
      endCall: (ref, reason, detail) => this.endCall(ref, reason, detail),
      endThenClose: (ctx, reason, detail) => this.endThenClose(ctx, reason, detail),
      byeDialog: (dialog, reason) => this.byeDialog(dialog, reason),
    });
  }

  bind(uas: SipUas): void {
    this.uas = uas;
  }

  get activeDialogs(): number {
    return this.dialogs.size;
  }

  invite(tx: InviteServerTransaction, v: ValidRequest, peer: Peer): void {
    if (this.heldForSrtp(v, () => this.invite(tx, v, peer))) return;
    const ctx = v.to.params.tag ? this.find(v) : undefined;
    if (v.to.params.tag && !ctx) return void this.uas.respond(tx, 481);
    const run = ctx ? this.offers.reInvite(tx, v, ctx) : this.calls.invite(tx, v, peer);
    run.catch((err: unknown) => {
      this.log.error({ err, callId: v.callId }, 'INVITE failed');
      if (tx.state === InviteTxState.Proceeding) this.uas.respond(tx, 500);
    });
  }

  /** A new INVITE screened before its transaction: unknown number (404) or clear where TLS is required (403), new-call.ts. */
  screen(v: ValidRequest, peer: Peer): Promise<Refusal> | null {
    return this.calls.screen(v, peer);
  }

  /**
   * The encryption policy of an INVITE's trunk (its source address) and route (the dialled number): TLS for the
   * signalling, SRTP for the media — the SRTP side reads `.srtp` here (require / prefer / allow).
   */
  encryptionFor(v: ValidRequest, peer: Peer): EncryptionPolicy {
    return (this.deps.encryption ?? EncryptionPolicies.none()).forInbound({ source: unmapped(peer.address), number: this.calls.numberFor(v) });
  }

  ack(v: ValidRequest): void {
    if (this.calls.lateOfferAck(dialogId(v.callId, v.to.params.tag ?? '', v.from.params.tag ?? ''), v.sdp)) return;
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

  /** REFER from the far end: acted on where the route says `accept` (refer-accept.ts), else 403 + Warning (refer.ts); 481 outside a call. */
  refer(tx: NonInviteServerTransaction, v: ValidRequest, peer: Peer): void {
    const ctx = this.find(v);
    if (!ctx) return void this.uas.respond(tx, 481);
    ctx.dialog.acceptRemoteCseq(v.cseq.seq, 'REFER');
    const referred = this.deps.calls.referred?.bind(this.deps.calls);
    if (!this.referRoutes.forCall(referKey(ctx.dialog)).accept || !referred) return this.refers.refer(tx, v, this.localAddress(peer));
    const respond = (t: NonInviteServerTransaction, status: number, opts?: { reason?: string; headers?: Array<[string, string]> }): void => void this.uas.respond(t, status, opts);
    const endReferred = (): void => this.endThenClose(ctx, REFERRED_REASON);
    acceptRefer({ log: this.log, respond, send: (d, method, build) => this.inDialog(d, method, build), referred, endReferred }, tx, v, ctx.dialog, ctx.ref, this.localAddress(peer));
  }

  /** Sends a request in `dialog` (REFER, NOTIFY) with our Contact; resolves its final status (null: none came). */
  private inDialog(dialog: Dialog, method: string, build: (req: SipRequest) => void): Promise<number | null> {
    const snap = dialog.snap;
    const peer = { transport: snap.transport, address: snap.peer.address, port: snap.peer.port };
    const { req, dest } = dialog.request(method, this.uas.transport.sentBy(snap.transport, this.localAddress(peer)));
    req.headers.add('contact', this.contact(peer));
    build(req);
    return this.uas.sendRequest(req, dest);
  }

  /** NOTIFY of a REFER of ours (refer.ts): 200 and the transfer's progress; 481 outside a call. */
  notify(tx: NonInviteServerTransaction, v: ValidRequest): void {
    const ctx = this.find(v);
    if (!ctx) return void this.uas.respond(tx, 481);
    ctx.dialog.acceptRemoteCseq(v.cseq.seq, 'NOTIFY');
    this.refers.notify(tx, v, ctx.dialog);
  }

  private get referRoutes(): ReferRoutes {
    return this.deps.refer ?? ReferRoutes.none();
  }

  /** PRACK (RFC 3262 §4): 200 when its RAck acknowledges a reliable 18x of ours, else 481. */
  prack(tx: NonInviteServerTransaction, v: ValidRequest): void {
    const rel = this.calls.provisionals.get(`${v.callId}|${v.to.params.tag ?? ''}`);
    const rack = parseRAck(v.req.headers.get('rack'));
    if (!rel || !rack) this.log.info({ callId: v.callId, rack: v.req.headers.get('rack'), pending: rel !== undefined }, 'PRACK matches no reliable provisional response');
    if (!rel || !rack || !rel.prack(rack)) return void this.uas.respond(tx, 481);
    this.uas.respond(tx, 200);
  }

  /** UPDATE (RFC 3311) in a confirmed dialog: offer-answer.ts; in the early dialog of a ringing call: early-update.ts; else 481. */
  update(tx: NonInviteServerTransaction, v: ValidRequest): void {
    if (this.heldForSrtp(v, () => this.update(tx, v))) return;
    const ctx = this.find(v);
    if (!ctx) return void (this.calls.earlyUpdate(tx, v) || this.outboundEarly?.update(tx, v) || this.uas.respond(tx, 481));
    this.offers.update(tx, v, ctx);
  }

  /**
   * An SDP that may agree SRTP (RTP/SAVP, or a=crypto) before werift is loaded (the first SRTP call after a start,
   * ingress/werift.ts): handled once it is (`then`), so the SRTP context it builds finds the ciphers. True when held
   * back; a failed load is logged and the request left unanswered (its transaction times out).
   */
  private heldForSrtp(v: ValidRequest, then: () => void): boolean {
    if (weriftLoaded() || !sdpWantsSrtp(v.sdp)) return false;
    loadWerift().then(then, (err: unknown) => this.log.error({ err, callId: v.callId }, 'loading the SRTP ciphers (werift) failed'));
    return true;
  }

  cancel(inviteTx: InviteServerTransaction): void {
    const r = this.calls.ringing.get(inviteTx.key);
    if (r) this.calls.provisionals.get(`${inviteTx.request.callId}|${r.toTag}`)?.stop();
    this.uas.respond(inviteTx, 487, { toTag: r?.toTag });
  }

  /** Detaches every call without BYE (shutdown: the calls carry on after a restart). */
  close(): void {
    this.takeover?.stop();
    for (const ctx of this.dialogs.values()) {
      ctx.awaitingAck = null;
      ctx.timer?.stop();
      ctx.rtpWatch?.stop();
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

  /** Cluster mode: this node takes over the SIP calls of nodes that die or stop (takeover.ts). */
  startTakeover(): SipTakeover<CallCtx> {
    this.takeover ??= new SipTakeover<CallCtx>({
      store: this.deps.store,
      calls: this.deps.calls,
      rtp: this.deps.rtp,
      log: this.log,
      uas: () => this.uas,
      masterKey: this.masterKey,
      localAddress: (peer) => this.localAddress(peer),
      contact: (peer) => this.contact(peer),
      track: (dialog, rtp, ref, held) => this.track(dialog, rtp, ref, held),
      endCall: (ref, reason, detail) => this.endCall(ref, reason, detail),
      endThenClose: (ctx, reason, detail) => this.endThenClose(ctx, reason, detail),
    });
    this.takeover.start();
    return this.takeover;
  }

  /**
   * A live call's context: its leg, its dialog in the table, and its media faults wired to the call's end — an
   * exception in an RTP socket or timer callback (media/guard.ts) ends this call with `sip:media-fault` and BYE,
   * logged once; the node and its other calls carry on.
   */
  private track(dialog: Dialog, rtp: RtpSession, ref: { tenant: string; callId: string }, held: boolean, awaitingAck: InviteServerTransaction | null = null): CallCtx {
    const ctx: CallCtx = { dialog, rtp, ref, leg: null as unknown as SipLeg, awaitingAck, held, timer: null, srtpLevel: 'allow' };
    const referBy = this.referRoutes.forCall(referKey(dialog)).transfer ? (target: string) => this.refers.transfer(dialog, target, dialog.snap.localUri) : undefined;
    ctx.leg = new SipLeg(rtp, dialog.snap, (reason) => this.detach(this.hangUp(ctx, reason), ref.callId, 'BYE not sent'), referBy);
    rtp.on('fault', (detail) => {
      this.log.error({ call: ref.callId, callId: dialog.snap.callId, detail }, 'SIP media failed: ending the call');
      this.endThenClose(ctx, 'sip:media-fault', detail);
    });
    if (rtp.srtp) rtp.srtp.onRollover = (inbound) => this.offers.storeRollover(ctx, inbound);
    this.dialogs.set(dialog.id, ctx);
    this.timers.start(ctx);
    this.watchRtp(ctx);
    return ctx;
  }

  /** Starts the call's RTP inactivity watch (rtp-timeout.ts): a full timeout from now, whether answered or resumed. */
  private watchRtp(ctx: CallCtx): void {
    const limits = this.deps.rtpTimeout ?? DEFAULT_RTP_TIMEOUT;
    ctx.rtpWatch = new RtpInactivity(limits, { packets: () => ctx.rtp.stats.packetsIn, held: () => ctx.held }, (idleMs, held) => {
      if (ctx.claimPending) return; // a takeover not (yet) granted: the call is not ours to end (takeover.ts)
      this.log.warn({ call: ctx.ref.callId, callId: ctx.dialog.snap.callId, idleMs, held }, 'no RTP from the far end: ending the call with BYE');
      this.endThenClose(ctx, RTP_TIMEOUT_REASON, `no RTP for ${idleMs} ms${held ? ' (on hold)' : ''}`);
    });
    ctx.rtpWatch.start();
  }

  /** The call's transport and media encryption on its row; a failure is logged (the call goes on). */
  private async recordSecurity(ref: { tenant: string; callId: string }, transport: Peer['transport'], mediaEncryption: 'none' | 'srtp'): Promise<void> {
    const r = await this.deps.calls.recordSecurity(ref, { transport, mediaEncryption }, { caller: 'sip', id: `sip:security:${ref.callId}` }).catch((err: unknown) => ({ ok: false as const, code: 'error', message: (err as Error).message }));
    if (!r.ok) this.log.warn({ call: ref.callId, outcome: r }, 'SIP call transport not recorded');
  }

  /** An answered outbound call (its dialog confirmed, its ACK sent): the leg goes to the call manager like an inbound one. */
  async adoptOutbound(o: { dialog: Dialog; rtp: RtpSession; ref: { tenant: string; callId: string }; srtpLevel?: EncryptionPolicy['srtp'] }): Promise<void> {
    const ctx = this.track(o.dialog, o.rtp, o.ref, false);
    ctx.srtpLevel = o.srtpLevel ?? 'allow';
    await this.recordSecurity(o.ref, o.dialog.snap.transport, o.rtp.srtp ? 'srtp' : 'none');
    await this.deps.calls.attach(o.ref, ctx.leg);
  }

  /** Whether `v` belongs to a live dialog of ours (Call-ID and both tags). */
  hasDialog(v: ValidRequest): boolean {
    return this.find(v) !== undefined || this.calls.provisionals.has(`${v.callId}|${v.to.params.tag ?? ''}`) || this.calls.hasEarly(v) || (this.outboundEarly?.has(v) ?? false);
  }

  private find(v: ValidRequest): CallCtx | undefined {
    return this.dialogs.get(dialogId(v.callId, v.to.params.tag ?? '', v.from.params.tag ?? ''));
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
    if (peer.transport === 'tls') return `<sip:switchboard@${this.localAddress(peer)}:${this.uas.transport.tlsPort ?? this.uas.port};transport=tls>`;
    const t = peer.transport === 'tcp' ? ';transport=tcp' : '';
    return `<sip:switchboard@${this.localAddress(peer)}:${this.uas.port}${t}>`;
  }

  private answerHeaders(peer: Peer, timer: UasTimerDecision): Array<[string, string]> {
    return [['Contact', this.contact(peer)], ['Allow', ALLOW.join(', ')], ['Supported', SUPPORTED.join(', ')], ...uasTimerHeaders(timer)];
  }

  private get minSe(): number {
    return this.deps.minSe ?? RFC_MIN_SE;
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
    if (ctx.claimPending) return; // another node won the call (takeover.ts): the dialog is its
    if (ctx.dialog.state === DialogState.Terminated) return;
    ctx.dialog.transition(DialogState.Terminated);
    await this.byeDialog(ctx.dialog, reason);
  }

  /** BYE for `dialog` with a Reason naming why (RFC 3326). */
  private async byeDialog(dialog: Dialog, reason: string): Promise<void> {
    const snap = dialog.snap;
    const sentBy = this.uas.transport.sentBy(snap.transport, this.localAddress({ transport: snap.transport, address: snap.peer.address, port: snap.peer.port }));
    const { req, dest } = dialog.request('BYE', sentBy, {});
    req.headers.add('reason', byeReason(reason));
    const status = await this.uas.sendRequest(req, dest);
    this.log.info({ callId: snap.callId, status, reason }, 'BYE sent');
  }

  private forget(ctx: CallCtx): void {
    if (this.dialogs.get(ctx.dialog.id) === ctx) this.dialogs.delete(ctx.dialog.id);
    this.refers.forget(ctx.dialog);
    ctx.awaitingAck = null;
    ctx.timer?.stop();
    ctx.rtpWatch?.stop();
    this.deps.rtp.release(ctx.rtp.port);
  }
}
