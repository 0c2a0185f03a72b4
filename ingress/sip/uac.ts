/**
 * Outbound SIP calls (UAC) for agent-initiated calls: `dial()` writes the call
 * row (`call_dialed`: direction outbound, `ringing`) and returns its id; the
 * INVITE then runs in the background:
 *
 *   INVITE (SDP offer PCMU, PCMA, telephone-event from an RTP port of the pool; a=crypto lines when the route's SRTP
 *           level (`route.encryption.srtp`) asks: RTP/SAVP under `require`, RTP/AVP under `prefer`; the answer's
 *           a=crypto must pick one of them)
 *     │   (Supported: timer, 100rel; Session-Expires: 1800 — RFC 4028 §7.1)
 *     ├─ 1xx ─► ringing (a ring timeout, or `cancel(callId)` — a warm transfer giving up — sends CANCEL ─► 487 ─►
 *     │        ended `sip:no-answer` / the given reason); a reliable 18x
 *     │        (Require: 100rel + RSeq) gets one PRACK with its RAck per RSeq (RFC 3262 §4, prack.ts); an UPDATE
 *     │        from the callee in the early dialog is answered there (early-update.ts: 200 + answer once an 18x
 *     │        brought SDP, else 491), and its offer/answer is the call's once answered
 *     ├─ 401/407 ─► answered ONCE with digest credentials (outbound-config.ts): CSeq+1, same Call-ID and From tag
 *     ├─ 422 ─► sent ONCE more with Session-Expires and Min-SE raised to the 422's Min-SE (RFC 4028 §7.4)
 *     ├─ 2xx ─► dialog (remote tag, Contact, Record-Route reversed) ─► ACK (again for each retransmitted 2xx);
 *     │        its Session-Expires starts the session timer (RFC 4028 §7.2: no refresher named = us)
 *     │        ─► call_answered ─► SipApp.adoptOutbound: the same SipLeg / CallSession path as inbound
 *     │           (consent, recording, agent; BYE either way; kill -9 continuation from the stored dialog)
 *     └─ 3xx-6xx, Timer B ─► call_ended with the reason (`sip:busy`, `sip:auth-failed`, `sip:timeout`, …)
 *
 * A `tel:` / E.164 target goes to the from-number's trunk (trunk-routes.ts): the Request-URI is
 * `sip:+E164@trunk[:port]`, the row's `to` the E.164 number; no trunk = 422 `no_sip_trunk`, nothing written.
 *
 * The first hop's transport (outbound-config.ts `outboundHop`): UDP, TCP or TLS — a `sips:` target, `;transport=tls`,
 * a route with `"transport": "tls"` or an encryption policy that requires or prefers TLS (over TLS: Via `TLS`, a
 * `;transport=tls` Contact, and the dialog's later requests on the same connection, tls.ts).
 *
 * The attempt is a state machine with one guarded `transition()`:
 *
 *   Calling ─ 1xx ─► Ringing ─ ring timeout ─► Cancelling
 *      ▲                │
 *      └── 401/407 (the first one, from Calling or Ringing), 422 (the first one): a new INVITE transaction
 *      ├──────── 2xx ───────────────┬──────────────┬───► Answered
 *      └──────── failure/timeout ───┴──────────────┴───► Failed
 */
import crypto from 'node:crypto';
import dns from 'node:dns/promises';
import net from 'node:net';
import type { Logger } from 'pino';
import type { IngressStore } from '../port.ts';
import { guarded } from '../../media/guard.ts';
import type { CallControl } from '../../bridge/call-control.ts';
import { PROVIDER, type SipApp } from './app.ts';
import { Dialog, newBranch, newTag } from './dialog.ts';
import { answerChallenge } from './digest.ts';
import { Headers, parseCSeq, parseSipUri, splitList } from './headers.ts';
import type { SipRequest, SipResponse } from './message.ts';
import { outboundHop, type OutboundConfig, type OutboundRoute } from './outbound-config.ts';
import { RtpSession, type RtpPortPool } from './rtp.ts';
import { negotiate, offerSdp } from './sdp.ts';
import { answerSrtp, offerCrypto } from './sdes.ts';
import { encryptionFields, SrtpContext } from './srtp.ts';
import { loadWerift, weriftLoaded } from '../werift.ts';
import type { Destination, SipUas } from './uas.ts';
import { ALLOW, SUPPORTED } from './validate.ts';
import { formatRAck, parseRSeq, requires100rel } from './prack.ts';
import { DEFAULT_SESSION_EXPIRES, intervalAfter422, timerFromAnswer } from './session-timer.ts';
import { endReasonFor } from './end-reasons.ts';
import { outboundEarlyUpdate, type OutboundEarly } from './early-update.ts';
import type { NonInviteServerTransaction } from './transaction.ts';
import type { ValidRequest } from './validate.ts';
import { DialError, type DialRequest, type OutboundDialer } from '../port.ts';
import { checkTrunk, telTarget, trunkUri, type SipTrunk } from './trunk-routes.ts';

export type { DialRequest, OutboundDialer } from '../port.ts';
export { DialError } from '../port.ts';

export interface DialerDeps {
  store: IngressStore;
  calls: Pick<CallControl, 'end' | 'dial' | 'answered'>;
  uas: SipUas;
  app: SipApp;
  rtp: RtpPortPool;
  config: OutboundConfig;
  logger: Logger;
  /** No final answer this long after the INVITE: CANCEL (default 60 s). */
  ringTimeoutMs?: number;
  /** The trunk that carries `tel:`/E.164 targets from a tenant's number (trunk-routes.ts); absent or undefined = none. */
  trunkFor?: (tenant: string, from: string) => SipTrunk | undefined;
}

export enum AttemptState {
  Calling = 'calling',
  Ringing = 'ringing',
  Cancelling = 'cancelling',
  Answered = 'answered',
  Failed = 'failed',
}

const EDGES: Record<AttemptState, AttemptState[]> = {
  [AttemptState.Calling]: [AttemptState.Calling, AttemptState.Ringing, AttemptState.Answered, AttemptState.Failed],
  [AttemptState.Ringing]: [AttemptState.Calling, AttemptState.Cancelling, AttemptState.Answered, AttemptState.Failed],
  [AttemptState.Cancelling]: [AttemptState.Answered, AttemptState.Failed],
  [AttemptState.Answered]: [],
  [AttemptState.Failed]: [],
};

type Sockets = Awaited<ReturnType<RtpPortPool['bind']>>;

class Attempt {
  state = AttemptState.Calling;
  cseq = 1;
  authTried = false;
  /** The credentials the last INVITE carried (sent again on a 422 retry). */
  auth: { header: string; value: string } | null = null;
  /** RFC 4028 §7.4: our Session-Expires, and the Min-SE we say once a 422 raised it (set = retried once). */
  sessionExpires = DEFAULT_SESSION_EXPIRES;
  minSe: number | null = null;
  invite: SipRequest | null = null;
  ack: SipRequest | null = null;
  ackDest: Destination | null = null;
  ringTimer: NodeJS.Timeout | null = null;
  /** Why we cancelled (ring timeout, shutdown): the reason the call ends with on the 487. */
  cancelReason: string | null = null;
  /** The highest CSeq sent in the early dialog (PRACK): the confirmed dialog's requests continue above it. */
  inDialogCseq = 0;
  /** RSeq values already PRACKed (a retransmitted reliable 18x is not PRACKed again). */
  readonly pracked = new Set<number>();
  /** Early dialog (early-update.ts): an 18x brought SDP; the callee's last early UPDATE; our SDP version. */
  earlyAnswer = false;
  early: OutboundEarly['early'] = null;
  sdpVersion = 1;
  /** Our a=crypto offer (the same across a digest retry); null = plain RTP offered. */
  crypto: (ReturnType<typeof offerCrypto> & { required: boolean }) | null = null;

  constructor(
    readonly ref: { tenant: string; callId: string },
    readonly sipCallId: string,
    readonly fromTag: string,
    readonly fromUri: string,
    readonly target: string,
    readonly dest: Destination,
    readonly local: string,
    readonly route: OutboundRoute | null,
    readonly sockets: Sockets,
    readonly sdpSession: number,
  ) {}

  transition(to: AttemptState): void {
    if (!EDGES[this.state].includes(to)) throw new Error(`outbound call ${this.sipCallId}: ${this.state} → ${to} is not allowed`);
    this.state = to;
  }

  get open(): boolean {
    return this.state !== AttemptState.Answered && this.state !== AttemptState.Failed;
  }
}

export class SipDialer implements OutboundDialer {
  private readonly attempts = new Map<string, Attempt>();
  private readonly log: Logger;

  constructor(private readonly deps: DialerDeps) {
    this.log = deps.logger.child({ uac: true });
  }

  get dialing(): number {
    return this.attempts.size;
  }

  readonly prefixes = ['sip:', 'sips:', 'tel:', '+'] as const;

  targetProblem(to: string): string | null {
    if (telTarget(to) !== null) return null;
    const u = parseSipUri(to);
    return u !== null && u.headers === null && u.host !== '' ? null : 'is not a valid sip: URI (sip:user@host[:port][;transport=tcp|tls], or sips:user@host[:port]), tel: URI or E.164 number';
  }

  /** PUT /v1/provider-accounts/sip: a trunk for tel:/E.164 targets (trunk-routes.ts). */
  checkCredentials(credentials: Readonly<Record<string, string>>): Promise<Record<string, string>> {
    return new Promise((resolve) => resolve(checkTrunk(credentials)));
  }

  /** The Request-URI for `to`: a sip: URI as given; a tel:/E.164 number on the from-number's trunk (trunk-routes.ts). */
  private targetOf(req: DialRequest): { target: string; to: string } {
    const number = telTarget(req.to);
    if (number === null) return { target: req.to, to: req.to };
    const trunk = this.deps.trunkFor?.(req.tenant, req.from);
    if (!trunk) throw new DialError(422, 'no_sip_trunk', `to: ${req.to} is a telephone number, and no SIP trunk carries calls from ${req.from} (PUT /v1/provider-accounts/sip, or a "sip" account in SWITCHBOARD_PROVIDER_ACCOUNTS)`);
    return { target: trunkUri(number, trunk), to: number };
  }

  async dial(req: DialRequest): Promise<{ callId: string; providerCallId: string; sipCallId: string }> {
    const { target, to } = this.targetOf(req);
    const uri = parseSipUri(target);
    if (!uri) throw new DialError(400, 'invalid_request', `to: ${req.to} is not a sip: URI`);
    const route = this.deps.config.routeFor(uri.host);
    const first = outboundHop(uri, route);
    const hop = { ...first, port: first.port ?? (first.transport === 'tls' ? 5061 : 5060) };
    if (hop.transport === 'tls' && this.deps.uas.transport.tlsPort === null) throw new DialError(422, 'tls_not_configured', `${req.to} is reached over TLS, and SWITCHBOARD_SIP_TLS_CERT is not set`);
    let address = hop.host;
    if (!net.isIP(address)) {
      address = await dns.lookup(address, { family: 4 }).then(
        (r) => r.address,
        () => {
          throw new DialError(422, 'unresolvable_target', `cannot resolve ${hop.host}`);
        },
      );
    }
    const dest: Destination = { transport: hop.transport, address, port: hop.port };
    const sockets = await this.deps.rtp.bind().catch(() => {
      throw new DialError(503, 'no_rtp_port', 'no free RTP port: retry later');
    });
    const sipCallId = `${crypto.randomBytes(12).toString('hex')}@switchboard`;
    const receipt = await this.deps.calls
      .dial({ tenant: req.tenant, caller: req.caller, provider: PROVIDER, providerCallId: sipCallId, from: req.from, to, agent: req.agent ?? null, ...(req.amd ? { amd: req.amd } : {}) })
      .catch((err: unknown) => {
        this.releaseSockets(sockets);
        throw err;
      });
    if (!receipt.ok) {
      this.releaseSockets(sockets);
      const { code, message } = receipt;
      throw new DialError(code === 'forbidden' ? 403 : code.endsWith('_not_found') ? 404 : 409, code, message);
    }
    const callId = receipt.result.call_id;
    const local = this.deps.app.localAddress(dest);
    const user = req.from.startsWith('sip:') ? (parseSipUri(req.from)?.user ?? 'switchboard') : req.from;
    const fromUri = `sip:${encodeURIComponent(user).replace(/%2B/g, '+')}@${route?.fromDomain ?? local}`;
    const a = new Attempt({ tenant: req.tenant, callId }, sipCallId, newTag(), fromUri, target, dest, local, route, sockets, Math.floor(Date.now() / 1000));
    const srtp = route?.encryption.srtp ?? 'allow'; // the SRTP half of the route's encryption policy
    if (srtp !== 'allow') a.crypto = { ...offerCrypto(), required: srtp === 'require' };
    this.attempts.set(sipCallId, a);
    this.log.info({ call: callId, callId: sipCallId, to: target, via: `${dest.transport}:${dest.address}:${dest.port}`, auth: route ? route.username : 'none' }, 'outbound SIP call: INVITE');
    this.sendInvite(a, null);
    a.ringTimer = setTimeout(
      guarded(
        () => this.cancelAttempt(a, 'sip:no-answer'),
        (err) => this.log.error({ err, callId: a.sipCallId }, 'outbound ring timer failed'),
      ),
      this.deps.ringTimeoutMs ?? 60_000,
    );
    a.ringTimer.unref();
    return { callId, providerCallId: sipCallId, sipCallId };
  }

  /** Gives up call `callId` while it is still dialled (a warm transfer's time ran out): CANCEL once it rings (RFC 3261 §9.1). */
  cancel(callId: string, reason: string): boolean {
    const a = [...this.attempts.values()].find((x) => x.ref.callId === callId);
    if (!a || !a.open) return false;
    this.cancelAttempt(a, reason);
    return true;
  }

  /** An UPDATE from the callee in the early dialog of a call we are dialing (early-update.ts); false: none matches. */
  earlyUpdate(tx: NonInviteServerTransaction, v: ValidRequest): boolean {
    const a = this.attempts.get(v.callId);
    if (!a || !a.open || v.to.params.tag !== a.fromTag) return false;
    outboundEarlyUpdate(this.deps.uas, this.deps.app.contact(a.dest), a.route?.encryption.srtp ?? 'allow', a, tx, v);
    return true;
  }

  /** Whether `v` is in the early dialog of a call we are dialing (the callee's Call-ID and our From tag). */
  hasEarly(v: ValidRequest): boolean {
    const a = this.attempts.get(v.callId);
    return a !== undefined && a.open && v.to.params.tag === a.fromTag;
  }

  /**
   * At start: outbound calls this node was still dialing when its previous process died (kill -9) lost their
   * INVITE transaction with it — nothing can answer, CANCEL or ACK for them now — so they end `sip:interrupted`
   * instead of staying `ringing` forever. (A call already answered carries on: SipApp.resumeDialogs.)
   */
  async endInterrupted(): Promise<number> {
    const node = this.deps.store.node;
    const stale = this.deps.store.read(null).calls.find({ provider: PROVIDER, direction: 'outbound', state: 'ringing' }).filter((c) => c.owner_node === node && !this.attempts.has(c.provider_call_id));
    for (const c of stale) {
      const ended = await this.deps.calls.end({ tenant: c.tenant, callId: c.id }, 'sip:interrupted', { caller: 'sip:uac', id: `sip:end:${c.id}` });
      if (!ended) this.log.warn({ call: c.id }, 'interrupted outbound call not ended');
    }
    if (stale.length) this.log.warn({ calls: stale.map((c) => c.id) }, 'outbound calls still dialing when the previous process stopped: ended sip:interrupted');
    return stale.length;
  }

  /** Shutdown: calls still dialing are cancelled (if ringing) and ended `sip:shutdown`. */
  async close(): Promise<void> {
    const open = [...this.attempts.values()].filter((a) => a.open);
    for (const a of open) this.cancelAttempt(a, 'sip:shutdown');
    await Promise.all(open.map((a) => this.fail(a, 'sip:shutdown')));
  }

  private sendInvite(a: Attempt, auth: { header: string; value: string } | null): void {
    const h = new Headers();
    h.add('via', `${this.deps.uas.transport.sentBy(a.dest.transport, a.local)};branch=${newBranch()};rport`);
    h.add('max-forwards', '70');
    h.add('from', `<${a.fromUri}>;tag=${a.fromTag}`);
    h.add('to', `<${a.target}>`);
    h.add('call-id', a.sipCallId);
    h.add('cseq', `${a.cseq} INVITE`);
    if (a.route?.proxy) h.add('route', `<sip:${a.dest.address}:${a.dest.port};lr${a.dest.transport !== 'udp' ? `;transport=${a.dest.transport}` : ''}>`);
    h.add('contact', this.deps.app.contact(a.dest));
    h.add('allow', ALLOW.join(', '));
    h.add('user-agent', 'switchboard');
    h.add('supported', SUPPORTED.join(', '));
    h.add('session-expires', String(a.sessionExpires));
    if (a.minSe !== null) h.add('min-se', String(a.minSe));
    a.auth = auth;
    if (auth) h.add(auth.header, auth.value);
    h.add('content-type', 'application/sdp');
    const body = Buffer.from(offerSdp({ address: a.local, port: a.sockets.port, sessionId: a.sdpSession, sessionVersion: 1 }, a.crypto ?? undefined));
    a.invite = { kind: 'request', method: 'INVITE', uri: a.target, version: 'SIP/2.0', badStartLine: false, headers: h, body };
    const invite = a.invite;
    this.deps.uas.startClient(invite, a.dest, {
      response: (res) => void this.onResponse(a, invite, res).catch((err: unknown) => this.log.error({ err, callId: a.sipCallId }, 'outbound response handling failed')),
      timeout: () => void this.fail(a, 'sip:timeout').catch((err: unknown) => this.log.error({ err, callId: a.sipCallId }, 'outbound timeout handling failed')),
    });
  }

  private async onResponse(a: Attempt, invite: SipRequest, res: SipResponse): Promise<void> {
    if (res.status < 200) {
      if (res.status > 100 && a.open) this.prackIfReliable(a, invite, res);
      if (res.status > 100 && res.body.length > 0) a.earlyAnswer = true;
      if (a.state === AttemptState.Calling && res.status > 100) {
        a.transition(AttemptState.Ringing);
        // We gave up before any provisional response: the CANCEL could not go then (RFC 3261 §9.1); it goes now.
        if (a.cancelReason) this.cancelAttempt(a, a.cancelReason);
      }
      return;
    }
    if (res.status < 300) return this.answered(a, invite, res);
    if (invite !== a.invite) return; // a late final response to the challenged INVITE
    if ((res.status === 401 || res.status === 407) && a.state !== AttemptState.Cancelling) {
      const header = res.status === 401 ? 'www-authenticate' : 'proxy-authenticate';
      const challenge = res.headers.lines(header).find((c) => /^\s*Digest\s/i.test(c));
      if (!a.route?.username || !a.route.password || !challenge) return this.fail(a, 'sip:auth-required', res.status);
      if (a.authTried) return this.fail(a, 'sip:auth-failed', res.status);
      const answer = answerChallenge(challenge, { username: a.route.username, password: a.route.password, method: 'INVITE', uri: a.target });
      if (!answer.ok) {
        this.log.warn({ callId: a.sipCallId, detail: answer.detail }, 'outbound INVITE challenge cannot be answered');
        return this.fail(a, 'sip:auth-failed', res.status);
      }
      a.authTried = true;
      a.cseq++;
      a.transition(AttemptState.Calling);
      this.log.info({ callId: a.sipCallId, status: res.status, user: a.route.username }, 'outbound INVITE challenged: answering once with digest credentials');
      return this.sendInvite(a, { header: res.status === 401 ? 'authorization' : 'proxy-authorization', value: answer.header });
    }
    if (res.status === 422 && a.state !== AttemptState.Cancelling) return this.retryInterval(a, res);
    const reason = a.state === AttemptState.Cancelling && res.status === 487 && a.cancelReason ? a.cancelReason : endReasonFor(res.status);
    return this.fail(a, reason, res.status);
  }

  /**
   * RFC 4028 §7.4: a `422 Session Interval Too Small` names the callee's `Min-SE`; the INVITE is sent once more (a new
   * transaction, CSeq+1, the same Call-ID and From tag, the same credentials) with `Session-Expires` and `Min-SE`
   * raised to it (never lowered). A 422 without a usable `Min-SE`, one above a day, or a second 422:
   * the call ends `sip:session-interval-too-small`.
   */
  private retryInterval(a: Attempt, res: SipResponse): Promise<void> | void {
    const interval = intervalAfter422(a.sessionExpires, res.headers.get('min-se'), a.minSe !== null);
    if (interval === null) {
      this.log.warn({ callId: a.sipCallId, minSe: res.headers.get('min-se') ?? null }, 'outbound INVITE: a 422 that cannot be met');
      return this.fail(a, 'sip:session-interval-too-small', res.status);
    }
    a.sessionExpires = a.minSe = interval;
    a.cseq++;
    a.authTried = false; // the credentials go again; a fresh challenge to the new INVITE is answered once more
    a.transition(AttemptState.Calling);
    this.log.info({ callId: a.sipCallId, interval }, "outbound INVITE: 422, sent again with the callee's Min-SE");
    this.sendInvite(a, a.auth);
  }

  /** RFC 3262 §4: a reliable 18x (Require: 100rel and an RSeq) gets one PRACK per RSeq, in its early dialog. */
  private prackIfReliable(a: Attempt, invite: SipRequest, res: SipResponse): void {
    const rseq = parseRSeq(res.headers.get('rseq'));
    if (!requires100rel(res.headers) || rseq === null || a.pracked.has(rseq)) return;
    a.pracked.add(rseq);
    const cseq = parseCSeq(invite.headers.get('cseq') ?? '')?.seq ?? a.cseq;
    const media = { rtpPort: a.sockets.port, remoteMedia: { address: '0.0.0.0', port: 0 }, codec: 'PCMU' as const, payloadType: 0, eventPayloadType: null, sdpSession: a.sdpSession, sdpVersion: 1 };
    const early = Dialog.fromAnswer(res, { callId: a.sipCallId, localTag: a.fromTag, localUri: `<${a.fromUri}>`, remoteUri: `<${a.target}>`, requestUri: a.target, cseq: Math.max(cseq, a.inDialogCseq) }, a.dest, media);
    const { req, dest } = early.request('PRACK', this.deps.uas.transport.sentBy(a.dest.transport, a.local));
    a.inDialogCseq = early.snap.localCseq;
    req.headers.add('rack', formatRAck({ rseq, cseq, method: 'INVITE' }));
    void this.deps.uas.sendRequest(req, dest).then((status) => this.log.debug({ callId: a.sipCallId, rseq, status }, 'PRACK answered'));
  }

  private async answered(a: Attempt, invite: SipRequest, res: SipResponse): Promise<void> {
    if (a.ack) return void this.deps.uas.transport.sendRequest(a.ack, a.ackDest ?? a.dest); // a retransmitted 2xx: ACK it again
    // A 2xx after we gave up (Timer B, shutdown): the call row has ended; ACK the 2xx and hang up at once.
    const late = !a.open;
    if (!late) a.transition(AttemptState.Answered);
    this.clearRing(a);
    const cseq = parseCSeq(invite.headers.get('cseq') ?? '')?.seq ?? a.cseq;
    const answerSdp = res.body.toString('utf8');
    // After an early UPDATE from the callee (early-update.ts), its offer/answer is the one in force.
    const srtp: ReturnType<typeof answerSrtp> = a.early ? { ok: true, agreed: a.early.srtp } : a.crypto ? answerSrtp(answerSdp, a.crypto) : { ok: true };
    const read = a.early ?? negotiate(answerSdp, { address: a.local, port: a.sockets.port, sessionId: a.sdpSession, sessionVersion: 1 });
    // The answer's a=crypto is read against our offer (answerSrtp), never answered with a key of ours.
    const neg = read.ok && !srtp.ok ? { ok: false as const, status: 488 as const, warning: `399 switchboard "${srtp.reason}"` } : read;
    const agreed = srtp.ok ? srtp.agreed : undefined;
    const media = neg.ok
      ? { rtpPort: a.sockets.port, remoteMedia: neg.media.remote, codec: neg.media.codec, payloadType: neg.media.payloadType, eventPayloadType: neg.media.eventPayloadType, sdpSession: a.sdpSession, sdpVersion: a.sdpVersion, ...encryptionFields(agreed, this.deps.app.masterKey, a.sipCallId) }
      : { rtpPort: a.sockets.port, remoteMedia: { address: '0.0.0.0', port: 0 }, codec: 'PCMU' as const, payloadType: 0, eventPayloadType: null, sdpSession: a.sdpSession, sdpVersion: 1 };
    const dialog = Dialog.fromAnswer(res, { callId: a.sipCallId, localTag: a.fromTag, localUri: `<${a.fromUri}>`, remoteUri: `<${a.target}>`, requestUri: a.target, cseq: Math.max(cseq, a.inDialogCseq) }, a.dest, media);
    const timer = timerFromAnswer(res.headers);
    if (timer) dialog.snap.sessionTimer = { interval: timer.interval, weRefresh: timer.refresher === 'uac' };
    dialog.snap.peerAllowsUpdate = res.headers.values('allow').some((m) => m.toUpperCase() === 'UPDATE');
    const sentBy = this.deps.uas.transport.sentBy(a.dest.transport, a.local);
    const ack = dialog.request('ACK', sentBy, { cseq });
    a.ack = ack.req;
    a.ackDest = ack.dest;
    this.deps.uas.transport.sendRequest(ack.req, ack.dest);
    // Keep answering retransmitted 2xx with the ACK for Timer M; then forget the attempt.
    setTimeout(() => this.attempts.delete(a.sipCallId), 64 * this.deps.uas.timers.T1).unref();
    if (late || !neg.ok || a.cancelReason) {
      const reason = a.cancelReason ?? (late ? 'sip:late-answer' : 'sip:incompatible-answer');
      this.log.warn({ callId: a.sipCallId, reason, warning: neg.ok ? undefined : neg.warning }, 'outbound call answered but not usable: BYE');
      const bye = dialog.request('BYE', sentBy);
      void this.deps.uas.sendRequest(bye.req, bye.dest);
      if (late) return; // sockets released and the call ended when it failed
      this.releaseSockets(a.sockets);
      return this.endCall(a, reason);
    }
    // The SRTP ciphers (werift, ingress/werift.ts) before the call is answered: from `answered` to the RTP session
    // being adopted nothing else may be awaited (an extra tick there loses the far end's first media).
    if (agreed && !weriftLoaded()) await loadWerift();
    const r = await this.deps.calls.answered(a.ref, { caller: 'sip:uac' });
    if (!r.ok) {
      // Ended meanwhile (shutdown): hang up.
      const bye = dialog.request('BYE', sentBy);
      void this.deps.uas.sendRequest(bye.req, bye.dest);
      this.releaseSockets(a.sockets);
      return;
    }
    const rtp = new RtpSession(a.sockets, neg.media, `switchboard@${a.local}`);
    if (agreed) rtp.srtp = new SrtpContext(agreed.keys);
    this.log.info({ call: a.ref.callId, callId: a.sipCallId, codec: neg.media.codec, rtp: a.sockets.port, media: agreed ? `srtp ${agreed.keys.suite}` : 'rtp' }, 'outbound SIP call answered');
    await this.deps.app.adoptOutbound({ dialog, rtp, ref: a.ref, srtpLevel: a.route?.encryption.srtp ?? 'allow' });
  }

  /** CANCEL (RFC 3261 §9.1): only once a provisional response came; before that, wait for one or the timeout. */
  private cancelAttempt(a: Attempt, reason: string): void {
    this.clearRing(a);
    if (!a.open || !a.invite) return;
    a.cancelReason = reason;
    if (a.state !== AttemptState.Ringing) return;
    a.transition(AttemptState.Cancelling);
    const inv = a.invite;
    const h = new Headers();
    h.add('via', splitList(inv.headers.get('via') ?? '')[0] ?? '');
    h.add('max-forwards', '70');
    for (const name of ['from', 'to', 'call-id']) h.add(name, inv.headers.get(name) ?? '');
    h.add('cseq', `${parseCSeq(inv.headers.get('cseq') ?? '')?.seq ?? a.cseq} CANCEL`);
    for (const r of inv.headers.lines('route')) h.add('route', r);
    const cancel: SipRequest = { kind: 'request', method: 'CANCEL', uri: inv.uri, version: 'SIP/2.0', badStartLine: false, headers: h, body: Buffer.alloc(0) };
    this.log.info({ callId: a.sipCallId, reason }, 'outbound call: CANCEL');
    void this.deps.uas.sendRequest(cancel, a.dest);
  }

  private async fail(a: Attempt, reason: string, status?: number): Promise<void> {
    if (!a.open) return;
    a.transition(AttemptState.Failed);
    this.clearRing(a);
    this.attempts.delete(a.sipCallId);
    this.releaseSockets(a.sockets);
    this.log.info({ call: a.ref.callId, callId: a.sipCallId, status, reason }, 'outbound SIP call failed');
    await this.endCall(a, reason);
  }

  private async endCall(a: Attempt, reason: string): Promise<void> {
    await this.deps.calls.end(a.ref, reason, { caller: 'sip:uac', id: `sip:end:${a.ref.callId}` });
  }

  private clearRing(a: Attempt): void {
    if (a.ringTimer) clearTimeout(a.ringTimer);
    a.ringTimer = null;
  }

  private releaseSockets(s: Sockets): void {
    s.rtp.close();
    s.rtcp.close();
    this.deps.rtp.release(s.port);
  }
}
