/**
 * The SIP call application on top of the UAS core: INVITE ─► number routing
 * (bridge/inbound.ts) ─► SDP answer ─► 180 ─► 200 ─► `SipLeg` attached to the
 * call manager; ACK confirms; BYE either way ends the call; CANCEL before the
 * answer ─► 487; re-INVITE ─► new media (hold/unhold, codec, address); INFO ─►
 * DTMF. A 2xx never ACKed (Timer H') ends the call with BYE. Interop (RFC list in the README):
 * late offer (an INVITE without SDP gets our offer in the 200 and its answer in the ACK — none or a bad one: BYE,
 * `sip:bad-answer`), reliable provisionals (prack.ts: the 180 waits for its PRACK before the 200), UPDATE
 * (RFC 3311: an offer goes the re-INVITE's way, `applyOffer`; no body = a refresh) and session timers
 * (session-timer.ts: 422 below Min-SE, refresh as refresher with refresh.ts, BYE `sip:session-expired` when the
 * peer's refresh never comes). Outbound calls
 * (uac.ts) join here once answered (`adoptOutbound`): from then on BYE, INFO,
 * re-INVITE and the restart continuation treat them like inbound ones.
 *
 * Encryption (encryption-policy.ts): `screen` refuses an INVITE that came in clear on a trunk or route whose
 * policy requires TLS (403 + Warning, a `call_rejected`, no call row); `encryptionFor` gives the SRTP side the
 * media half of the policy; an answered call records its transport and media encryption (`recordSecurity`).
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { CallControl } from '../../bridge/call-control.ts';
import { unmapped } from './cidr.ts';
import type { IngressStore } from '../port.ts';
import { EncryptionPolicies, TLS_REQUIRED_WARNING, type EncryptionPolicy } from './encryption-policy.ts';
import { Dialog, DialogState, dialogId, newTag, type DialogSnapshot } from './dialog.ts';
import { parseSipUri } from './headers.ts';
import { resumeStoredDialogs } from './resume.ts';
import { SipLeg } from './leg.ts';
import { RtpPortPool, RtpSession } from './rtp.ts';
import { currentAnswer, negotiate } from './sdp.ts';
import { InviteTxState, type InviteServerTransaction, type NonInviteServerTransaction } from './transaction.ts';
import type { Peer } from './transport.ts';
import type { SipUas, UasHandler } from './uas.ts';
import { ALLOW, SUPPORTED, type Refusal, type ValidRequest } from './validate.ts';
import { buildResponse } from './message.ts';
import { firstRSeq, parseRAck, ReliableProvisional, requires100rel } from './prack.ts';
import { SessionRefresher } from './refresh.ts';
import { negotiateUas, RFC_MIN_SE, type SessionTimer, uasTimerHeaders, type UasTimerDecision } from './session-timer.ts';
import { offerSdp } from './sdp.ts';
import { playPrompt } from './early-media.ts';
import { call_ended, call_held, call_media_updated, call_received, call_unheld } from '../../schema/reducers.ts';

/** What the SIP ingress needs of call control (bridge/call-control.ts). */
export type SipCallControl = Pick<CallControl, 'receive' | 'refuseUnknown' | 'refuseByPolicy' | 'recordSecurity' | 'receivedThenEnded' | 'attach' | 'end' | 'mediaUpdated' | 'hold' | 'resume'>;

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
  /** Early media (early-media.ts): played after 183 + SDP, before the 200; absent = 180 Ringing. */
  earlyMedia?: Int16Array;
  /** TLS/SRTP policy per trunk and route (SWITCHBOARD_SIP_ENCRYPTION); absent = allow everything. */
  encryption?: EncryptionPolicies;
}

interface CallCtx {
  dialog: Dialog;
  rtp: RtpSession;
  leg: SipLeg;
  ref: { tenant: string; callId: string };
  /** The INVITE transaction whose 2xx awaits its ACK. */
  awaitingAck: InviteServerTransaction | null;
  held: boolean;
  /** The session timer (RFC 4028), while one was negotiated. */
  timer: SessionTimer | null;
}

const SDP = 'application/sdp';
type RtpSockets = Awaited<ReturnType<RtpPortPool['bind']>>;

export class SipApp implements UasHandler {
  private uas!: SipUas;
  private readonly dialogs = new Map<string, CallCtx>();
  /** INVITEs still proceeding, by transaction key (CANCEL finds them here). */
  private readonly ringing = new Map<string, { toTag: string }>();
  /** Reliable 18x awaiting their PRACK, by Call-ID + our tag (RFC 3262). */
  private readonly provisionals = new Map<string, ReliableProvisional>();
  /** Late-offer calls whose 200 (our offer) awaits the ACK with the answer, by dialog id. */
  private readonly lateOffers = new Map<string, { tx: InviteServerTransaction; answered: (sdp: string | null) => void }>();
  private readonly log: Logger;
  /** Session timers of the live calls (refresh.ts). */
  private readonly timers: SessionRefresher<CallCtx>;

  constructor(private readonly deps: SipAppDeps) {
    this.log = deps.logger;
    this.timers = new SessionRefresher<CallCtx>({
      uas: () => this.uas,
      log: this.log,
      minSe: this.minSe,
      localAddress: (peer) => this.localAddress(peer),
      contact: (peer) => this.contact(peer),
      end: (ctx, reason, detail) => this.endThenClose(ctx, reason, detail),
      detach: (p, call, what) => this.detach(p, call, what),
    });
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
    if (this.deps.store.read(null).numbers.findOne({ number: to })) return this.screenEncryption(v, peer, to);
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

  /**
   * The encryption policy of an INVITE's trunk (its source address) and route (the dialled number): TLS for the
   * signalling, SRTP for the media — the SRTP side reads `.srtp` here (require / prefer / allow).
   */
  encryptionFor(v: ValidRequest, peer: Peer): EncryptionPolicy {
    return (this.deps.encryption ?? EncryptionPolicies.none()).forInbound({ source: unmapped(peer.address), number: this.numberFor(v) });
  }

  /** TLS required on this trunk or route and the INVITE came in clear: recorded (`tls_required`), then 403 + Warning. */
  private screenEncryption(v: ValidRequest, peer: Peer, to: string): Promise<Refusal> | null {
    if (peer.transport === 'tls') return null;
    const policy = this.encryptionFor(v, peer);
    if (policy.tls === 'prefer') this.log.info({ callId: v.callId, to, transport: peer.transport }, 'SIP call in clear on a trunk that prefers TLS');
    if (policy.tls !== 'require') return null;
    const inbound = { provider: PROVIDER, providerCallId: v.callId, from: v.from.uri, to, source: unmapped(peer.address) };
    return this.deps.calls
      .refuseByPolicy(inbound, 'sip:invite', `tls_required: INVITE over ${peer.transport}`)
      .catch((err: unknown) => this.log.warn({ err, callId: v.callId }, 'SIP TLS-required refusal not recorded'))
      .then(() => {
        this.log.info({ callId: v.callId, to, from: `${peer.address}:${peer.port}`, transport: peer.transport }, 'SIP call rejected: TLS required');
        return { status: 403, reason: 'Forbidden (TLS required)', headers: [['Warning', TLS_REQUIRED_WARNING]], detail: 'TLS required' };
      });
  }

  ack(v: ValidRequest): void {
    const late = this.lateOffers.get(dialogId(v.callId, v.to.params.tag ?? '', v.from.params.tag ?? ''));
    if (late) {
      late.tx.acknowledged();
      return late.answered(v.sdp ?? '');
    }
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

  /** PRACK (RFC 3262 §4): 200 when its RAck acknowledges a reliable 18x of ours, else 481. */
  prack(tx: NonInviteServerTransaction, v: ValidRequest): void {
    const rel = this.provisionals.get(`${v.callId}|${v.to.params.tag ?? ''}`);
    const rack = parseRAck(v.req.headers.get('rack'));
    if (!rel || !rack) this.log.info({ callId: v.callId, rack: v.req.headers.get('rack'), pending: rel !== undefined }, 'PRACK matches no reliable provisional response');
    if (!rel || !rack || !rel.prack(rack)) return void this.uas.respond(tx, 481);
    this.uas.respond(tx, 200);
  }

  /**
   * UPDATE (RFC 3311 §5.2) in a confirmed dialog: an offer is answered like a re-INVITE's (491 while an INVITE of
   * ours awaits its ACK); without a body it refreshes the session (RFC 4028). UPDATE in an early dialog: 481.
   */
  update(tx: NonInviteServerTransaction, v: ValidRequest): void {
    const ctx = this.find(v);
    if (!ctx) return void this.uas.respond(tx, 481);
    if (!ctx.dialog.acceptRemoteCseq(v.cseq.seq, 'UPDATE')) return void this.uas.respond(tx, 500, { headers: [['Retry-After', '1']] });
    const timer = negotiateUas(v.req.headers, this.minSe);
    if (timer.kind === 'too-small') return void this.uas.respond(tx, 422, { headers: [['Min-SE', String(timer.minSe)]] });
    const run = async (): Promise<void> => {
      let answer: string | undefined;
      if (v.sdp) {
        if (ctx.awaitingAck) return void this.uas.respond(tx, 491);
        const r = await this.applyOffer(ctx, v.sdp, 'sip:update');
        if (!r.ok) return void this.uas.respond(tx, r.status, { headers: r.headers });
        answer = r.answer;
      }
      this.timers.apply(ctx, timer);
      const snap = ctx.dialog.snap;
      const headers: Array<[string, string]> = [['Contact', this.contact({ transport: snap.transport, address: snap.peer.address, port: snap.peer.port })], ...uasTimerHeaders(timer)];
      this.uas.respond(tx, 200, { headers, ...(answer ? { body: Buffer.from(answer), contentType: SDP } : {}) });
    };
    this.detach(run(), ctx.ref.callId, 'UPDATE handling failed');
  }

  cancel(inviteTx: InviteServerTransaction): void {
    const r = this.ringing.get(inviteTx.key);
    if (r) this.provisionals.get(`${inviteTx.request.callId}|${r.toTag}`)?.stop();
    this.uas.respond(inviteTx, 487, { toTag: r?.toTag });
  }

  /** Detaches every call without BYE (shutdown: the calls carry on after a restart). */
  close(): void {
    for (const ctx of this.dialogs.values()) {
      ctx.awaitingAck = null;
      ctx.timer?.stop();
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
    const ctx: CallCtx = { dialog, rtp, ref, leg: null as unknown as SipLeg, awaitingAck, held, timer: null };
    ctx.leg = new SipLeg(rtp, dialog.snap, (reason) => this.detach(this.hangUp(ctx, reason), ref.callId, 'BYE not sent'));
    rtp.on('fault', (detail) => {
      this.log.error({ call: ref.callId, callId: dialog.snap.callId, detail }, 'SIP media failed: ending the call');
      this.endThenClose(ctx, 'sip:media-fault', detail);
    });
    this.dialogs.set(dialog.id, ctx);
    this.timers.start(ctx);
    return ctx;
  }

  /** The call's transport and media encryption on its row; a failure is logged (the call goes on). */
  private async recordSecurity(ref: { tenant: string; callId: string }, transport: Peer['transport'], mediaEncryption: 'none' | 'srtp'): Promise<void> {
    const r = await this.deps.calls.recordSecurity(ref, { transport, mediaEncryption }, { caller: 'sip', id: `sip:security:${ref.callId}` }).catch((err: unknown) => ({ ok: false as const, code: 'error', message: (err as Error).message }));
    if (!r.ok) this.log.warn({ call: ref.callId, outcome: r }, 'SIP call transport not recorded');
  }

  /** An answered outbound call (its dialog confirmed, its ACK sent): the leg goes to the call manager like an inbound one. */
  async adoptOutbound(o: { dialog: Dialog; rtp: RtpSession; ref: { tenant: string; callId: string } }): Promise<void> {
    const ctx = this.track(o.dialog, o.rtp, o.ref, false);
    await this.recordSecurity(o.ref, o.dialog.snap.transport, 'none');
    await this.deps.calls.attach(o.ref, ctx.leg);
  }

  /** Whether `v` belongs to a live dialog of ours (Call-ID and both tags). */
  hasDialog(v: ValidRequest): boolean {
    return this.find(v) !== undefined || this.provisionals.has(`${v.callId}|${v.to.params.tag ?? ''}`);
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
    if (peer.transport === 'tls') return `<sip:switchboard@${this.localAddress(peer)}:${this.uas.transport.tlsPort ?? this.uas.port};transport=tls>`;
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
    const timer = negotiateUas(v.req.headers, this.minSe);
    if (timer.kind === 'too-small') return void this.uas.respond(tx, 422, { headers: [['Min-SE', String(timer.minSe)]] });
    const sockets = await this.deps.rtp.bind().catch(() => null);
    if (!sockets) return void this.uas.respond(tx, 503, { headers: [['Retry-After', '5']] });
    const address = this.localAddress(peer);
    const sdpSession = Math.floor(Date.now() / 1000);
    const local = { address, port: sockets.port, sessionId: sdpSession, sessionVersion: 1 };
    // Late offer (no SDP in the INVITE): no negotiation now; our offer goes in the 200, the answer comes in the ACK.
    const neg = v.sdp ? negotiate(v.sdp, local) : null;
    const release = (): void => this.releaseSockets(sockets);
    if (neg && !neg.ok) {
      release();
      return void this.uas.respond(tx, neg.status, { headers: [['Warning', neg.warning]] });
    }
    const toTag = newTag();
    this.ringing.set(tx.key, { toTag });
    const media = neg
      ? { rtpPort: sockets.port, remoteMedia: neg.media.remote, codec: neg.media.codec, payloadType: neg.media.payloadType, eventPayloadType: neg.media.eventPayloadType, sdpSession, sdpVersion: 1, direction: neg.media.direction }
      : { rtpPort: sockets.port, remoteMedia: { address: '0.0.0.0', port: 0 }, codec: 'PCMU' as const, payloadType: 0, eventPayloadType: null, sdpSession, sdpVersion: 1 };
    const dialog = Dialog.fromInvite(v, toTag, peer, media);
    if (timer.kind === 'timer') dialog.snap.sessionTimer = { interval: timer.interval, weRefresh: timer.refresher === 'uas' };
    dialog.snap.peerAllowsUpdate = v.req.headers.values('allow').some((m) => m.toUpperCase() === 'UPDATE');
    let early: RtpSession | null = null;
    try {
      const prompt = neg ? this.deps.earlyMedia : undefined;
      const prackOk = await this.ring(tx, v, peer, toTag, prompt && neg ? neg.answer : null);
      // Early media: the prompt plays as RTP on the call's own session, before the 200 (a CANCEL stops it).
      if (prompt && neg && prackOk && tx.state === InviteTxState.Proceeding) {
        early = new RtpSession(sockets, neg.media, `switchboard@${address}`);
        await playPrompt(early, prompt, () => tx.state !== InviteTxState.Proceeding);
      }
      if (this.deps.ringMs && prackOk) await new Promise((r) => setTimeout(r, this.deps.ringMs));
      if (tx.state !== InviteTxState.Proceeding || !prackOk) {
        early?.close();
        release();
        // RFC 3262 §3: a reliable 18x never PRACKed ─► 5xx to the INVITE.
        if (!prackOk && tx.state === InviteTxState.Proceeding) this.uas.respond(tx, 504, { toTag, reason: 'Server Time-out (no PRACK)' });
        return void (await this.recordCancelled(inbound, prackOk ? 'sip:cancel' : 'sip:no-prack')); // cancelled while ringing
      }
      const decision = await this.deps.calls.receive(inbound, 'sip:invite');
      if (tx.state !== InviteTxState.Proceeding) {
        early?.close();
        release();
        if (decision.kind === 'accepted') await this.endCall(decision, 'sip:cancel');
        return;
      }
      if (decision.kind !== 'accepted') {
        early?.close();
        release();
        if (decision.kind === 'transfer') return void this.uas.respond(tx, 302, { toTag, headers: [['Contact', `<${decision.target}>`]] });
        // RFC 3261 §21.5.4: overloaded, try later (a proxy fails over to another node).
        if (decision.kind === 'busy') return void this.uas.respond(tx, 503, { toTag, headers: [['Retry-After', String(decision.retryAfterS)]] });
        return void this.uas.respond(tx, decision.kind === 'rejected' ? 404 : 480, { toTag });
      }
      const ref = { tenant: decision.tenant, callId: decision.callId };
      if (!neg) return await this.answerLateOffer(tx, v, peer, dialog, sockets, ref, timer);
      const rtp = early ?? new RtpSession(sockets, neg.media, `switchboard@${address}`);
      const ctx = this.track(dialog, rtp, ref, neg.media.held, tx);
      rtp.on('latched', (at) => this.log.debug({ callId: v.callId, at }, 'RTP latched'));
      tx.onNoAck = () => {
        this.log.warn({ callId: v.callId }, '2xx never acknowledged: ending the call with BYE');
        this.endThenClose(ctx, 'sip:no-ack');
      };
      this.uas.respond(tx, 200, { toTag, headers: this.answerHeaders(peer, timer), body: Buffer.from(neg.answer), contentType: SDP });
      this.log.info({ callId: v.callId, call: ref.callId, codec: neg.media.codec, rtp: sockets.port, transport: peer.transport }, 'SIP call answered');
      await this.recordSecurity(ref, peer.transport, 'none'); // the SRTP side passes 'srtp' when the media is encrypted
      await this.deps.calls.attach(ref, ctx.leg);
    } finally {
      this.ringing.delete(tx.key);
      this.provisionals.get(`${v.callId}|${toTag}`)?.stop();
      this.provisionals.delete(`${v.callId}|${toTag}`);
    }
  }

  private releaseSockets(sockets: RtpSockets): void {
    sockets.rtp.close();
    sockets.rtcp.close();
    this.deps.rtp.release(sockets.port);
  }

  /**
   * 180 Ringing (183 + SDP with early media); reliable (RFC 3262 §3: Require: 100rel, RSeq, retransmitted until the PRACK) when the INVITE
   * requires 100rel, and then the answer waits for the PRACK. False: no PRACK within 64·T1 (or cancelled meanwhile).
   */
  private async ring(tx: InviteServerTransaction, v: ValidRequest, peer: Peer, toTag: string, earlyAnswer: string | null): Promise<boolean> {
    const headers: Array<[string, string]> = [['Contact', this.contact(peer)]];
    // Early media: 183 Session Progress with the SDP answer (early-media.ts); else 180 Ringing.
    const status = earlyAnswer ? 183 : 180;
    const body = earlyAnswer ? { body: Buffer.from(earlyAnswer), contentType: SDP } : {};
    if (!requires100rel(v.req.headers)) {
      this.uas.respond(tx, status, { toTag, headers, ...body });
      return true;
    }
    const rseq = firstRSeq();
    const res = buildResponse(v.req, status, { toTag, headers: [...headers, ['Require', '100rel'], ['RSeq', String(rseq)], ['Allow', ALLOW.join(', ')]], ...body });
    const rel = new ReliableProvisional(rseq, v.cseq.seq, () => tx.respond(res), this.uas.timers.T1);
    this.provisionals.set(`${v.callId}|${toTag}`, rel);
    return (await rel.settled) || tx.state !== InviteTxState.Proceeding;
  }

  /**
   * Late offer (RFC 3261 §13.2.1): our offer in the 200, the answer in the ACK. The media starts once the answer is
   * read; no ACK (Timer H') ends the call `sip:no-ack`, an ACK without a usable answer `sip:bad-answer` — with BYE.
   */
  private async answerLateOffer(tx: InviteServerTransaction, v: ValidRequest, peer: Peer, dialog: Dialog, sockets: RtpSockets, ref: { tenant: string; callId: string }, timer: UasTimerDecision): Promise<void> {
    const address = this.localAddress(peer);
    const local = { address, port: sockets.port, sessionId: dialog.snap.sdpSession, sessionVersion: 1 };
    const answer = new Promise<string | null>((resolve) => this.lateOffers.set(dialog.id, { tx, answered: resolve }));
    tx.onNoAck = () => this.lateOffers.get(dialog.id)?.answered(null);
    this.uas.respond(tx, 200, { toTag: dialog.snap.localTag, headers: this.answerHeaders(peer, timer), body: Buffer.from(offerSdp(local)), contentType: SDP });
    const sdp = await answer;
    this.lateOffers.delete(dialog.id);
    const neg = sdp ? negotiate(sdp, local) : null;
    if (!neg?.ok) {
      const reason = sdp === null ? 'sip:no-ack' : 'sip:bad-answer';
      const detail = sdp === null ? '2xx never acknowledged' : sdp === '' ? 'no SDP answer in the ACK' : neg && !neg.ok ? neg.warning : 'bad answer';
      this.log.warn({ callId: v.callId, call: ref.callId, reason, detail }, 'late offer: no usable answer, ending the call with BYE');
      this.releaseSockets(sockets);
      await this.endCall(ref, reason, detail);
      dialog.transition(DialogState.Terminated);
      return this.byeDialog(dialog, reason);
    }
    Object.assign(dialog.snap, { remoteMedia: neg.media.remote, codec: neg.media.codec, payloadType: neg.media.payloadType, eventPayloadType: neg.media.eventPayloadType, direction: neg.media.direction });
    dialog.transition(DialogState.Confirmed);
    const rtp = new RtpSession(sockets, neg.media, `switchboard@${address}`);
    const ctx = this.track(dialog, rtp, ref, neg.media.held);
    this.log.info({ callId: v.callId, call: ref.callId, codec: neg.media.codec, rtp: sockets.port, transport: peer.transport }, 'SIP call answered (late offer)');
    await this.recordSecurity(ref, peer.transport, 'none');
    await this.deps.calls.attach(ref, ctx.leg);
  }

  private answerHeaders(peer: Peer, timer: UasTimerDecision): Array<[string, string]> {
    return [['Contact', this.contact(peer)], ['Allow', ALLOW.join(', ')], ['Supported', SUPPORTED.join(', ')], ...uasTimerHeaders(timer)];
  }

  private get minSe(): number {
    return this.deps.minSe ?? RFC_MIN_SE;
  }

  /**
   * The SDP half of a re-INVITE or UPDATE with an offer: negotiated, committed to the store (a restart carries on
   * with what was agreed), then used; the hold state follows the offer's direction.
   */
  private async applyOffer(ctx: CallCtx, offer: string, caller: string): Promise<{ ok: true; answer: string } | { ok: false; status: number; headers: Array<[string, string]> }> {
    const snap = ctx.dialog.snap;
    const address = this.localAddress({ transport: snap.transport, address: snap.peer.address, port: snap.peer.port });
    const neg = negotiate(offer, { address, port: ctx.rtp.port, sessionId: snap.sdpSession, sessionVersion: snap.sdpVersion + 1 });
    if (!neg.ok) return { ok: false, status: neg.status, headers: [['Warning', neg.warning]] };
    const next: DialogSnapshot = {
      ...snap,
      sdpVersion: snap.sdpVersion + 1,
      remoteMedia: neg.media.remote,
      codec: neg.media.codec,
      payloadType: neg.media.payloadType,
      eventPayloadType: neg.media.eventPayloadType,
      direction: neg.media.direction,
    };
    const stored = await this.deps.calls.mediaUpdated(ctx.ref, { provider: PROVIDER, codec: next.codec, resume: { ...next } as unknown as Record<string, unknown> }, { caller });
    if (!stored.ok) {
      this.log.warn({ outcome: stored, call: ctx.ref.callId, caller }, 'media change not recorded; refused');
      return { ok: false, status: 500, headers: [['Retry-After', '1']] };
    }
    Object.assign(snap, next);
    ctx.rtp.update(neg.media);
    ctx.leg.updateMedia();
    if (neg.media.held !== ctx.held) {
      ctx.held = neg.media.held;
      const r = await this.deps.calls.hold(ctx.ref, ctx.held, { caller });
      if (!r.ok) this.log.info({ outcome: r, held: ctx.held }, 'hold state not recorded');
    }
    return { ok: true, answer: neg.answer };
  }

  private async reInvite(tx: InviteServerTransaction, v: ValidRequest): Promise<void> {
    const ctx = this.find(v);
    if (!ctx) return void this.uas.respond(tx, 481);
    if (!ctx.dialog.acceptRemoteCseq(v.cseq.seq, 'INVITE')) return void this.uas.respond(tx, 500, { headers: [['Retry-After', '1']] });
    if (ctx.awaitingAck) return void this.uas.respond(tx, 491);
    const timer = negotiateUas(v.req.headers, this.minSe);
    if (timer.kind === 'too-small') return void this.uas.respond(tx, 422, { headers: [['Min-SE', String(timer.minSe)]] });
    const snap = ctx.dialog.snap;
    const peer: Peer = { transport: snap.transport, address: snap.peer.address, port: snap.peer.port };
    let answer: string;
    if (v.sdp) {
      const r = await this.applyOffer(ctx, v.sdp, 'sip:reinvite');
      if (!r.ok) return void this.uas.respond(tx, r.status, { headers: r.headers });
      answer = r.answer;
    } else {
      // A refresh without an offer: our current session as the offer (the ACK's answer is ignored).
      answer = currentAnswer(ctx.dialog.snap, ctx.rtp.port, ctx.held, this.localAddress(peer));
    }
    this.timers.apply(ctx, timer);
    ctx.awaitingAck = tx;
    tx.onNoAck = () => {
      ctx.awaitingAck = null;
      this.endThenClose(ctx, 'sip:no-ack');
    };
    this.uas.respond(tx, 200, { headers: this.answerHeaders(peer, timer), body: Buffer.from(answer), contentType: SDP });
  }

  /** A call cancelled before the answer is still a call: received, then ended (`sip:cancel`, or `sip:no-prack`). */
  private async recordCancelled(inbound: { provider: string; providerCallId: string; from: string; to: string }, reason = 'sip:cancel'): Promise<void> {
    const callId = await this.deps.calls.receivedThenEnded(inbound, 'sip:invite', { reason, source: (id) => ({ caller: 'sip', id: `sip:end:${id}` }) });
    if (callId !== null) this.log.info({ callId: inbound.providerCallId, call: callId, reason }, 'SIP call ended before the answer');
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
    await this.byeDialog(ctx.dialog, reason);
  }

  /** BYE for `dialog` with a Reason naming why (RFC 3326). */
  private async byeDialog(dialog: Dialog, reason: string): Promise<void> {
    const snap = dialog.snap;
    const sentBy = this.uas.transport.sentBy(snap.transport, this.localAddress({ transport: snap.transport, address: snap.peer.address, port: snap.peer.port }));
    const { req, dest } = dialog.request('BYE', sentBy, {});
    req.headers.add('reason', `SIP;cause=200;text="${reason.replace(/["\\]/g, '').slice(0, 80)}"`);
    const status = await this.uas.sendRequest(req, dest);
    this.log.info({ callId: snap.callId, status, reason }, 'BYE sent');
  }

  private forget(ctx: CallCtx): void {
    if (this.dialogs.get(ctx.dialog.id) === ctx) this.dialogs.delete(ctx.dialog.id);
    ctx.awaitingAck = null;
    ctx.timer?.stop();
    this.deps.rtp.release(ctx.rtp.port);
  }
}
