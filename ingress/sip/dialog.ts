/**
 * A dialog (RFC 3261 §12), ours as UAS (an inbound INVITE) or as UAC (the 2xx
 * to an outbound INVITE, uac.ts): identified by Call-ID + local tag + remote tag,
 * it remembers the route set, the remote target and both CSeq spaces, builds
 * the in-dialog requests we send (BYE), and serializes to a snapshot kept in
 * the store so a restarted node can carry the call on.
 *
 *   INVITE ─► Early (1xx with our tag sent) ─► 2xx sent ─► Confirmed ─► BYE either way ─► Terminated
 *               └─────── CANCEL / error response ──────────────────────────────────────► Terminated
 */
import type { Direction } from './sdp.ts';
import { srtpResumeProblem, type SrtpResume } from './srtp.ts';
import crypto from 'node:crypto';
import net from 'node:net';
import { Headers, formatNameAddr, parseNameAddr, parseSipUri } from './headers.ts';
import type { SipRequest } from './message.ts';
import type { ValidRequest } from './validate.ts';

export enum DialogState {
  Early = 'early',
  Confirmed = 'confirmed',
  Terminated = 'terminated',
}

const EDGES: Record<DialogState, DialogState[]> = {
  [DialogState.Early]: [DialogState.Confirmed, DialogState.Terminated],
  [DialogState.Confirmed]: [DialogState.Terminated],
  [DialogState.Terminated]: [],
};

/** Everything needed to carry a dialog on after a restart (stored as the leg's `resume`). */
export interface DialogSnapshot {
  callId: string;
  localTag: string;
  remoteTag: string;
  /** Our URI and the far end's, as name-addr (To / From of the INVITE, without tags). */
  localUri: string;
  remoteUri: string;
  remoteTarget: string;
  routeSet: string[];
  localCseq: number;
  remoteCseq: number;
  transport: 'udp' | 'tcp' | 'tls';
  peer: { address: string; port: number };
  rtpPort: number;
  remoteMedia: { address: string; port: number };
  codec: 'PCMU' | 'PCMA';
  payloadType: number;
  eventPayloadType: number | null;
  sdpSession: number;
  sdpVersion: number;
  /** Our media direction after the last offer/answer (absent in snapshots written before re-INVITEs were stored = sendrecv). */
  direction?: Direction;
  /**
   * The session timer negotiated last (RFC 4028, session-timer.ts): the interval in seconds and whether we refresh.
   * Absent = no timer (and in snapshots written before session timers). A resumed call restarts it from here.
   */
  sessionTimer?: { interval: number; weRefresh: boolean };
  /** The peer's Allow lists UPDATE (we refresh with UPDATE rather than re-INVITE). Absent = false. */
  peerAllowsUpdate?: boolean;
  /** The media encryption in use (absent in snapshots written before SRTP = none); read by whoever records it on the call. */
  mediaEncryption?: 'srtp' | 'none';
  /** SDES-SRTP: suite, tag, keys sealed with the recording master key, the far end's ROC (srtp.ts). */
  srtp?: SrtpResume;
}

export const newTag = (): string => crypto.randomBytes(6).toString('hex');
export const newBranch = (): string => `z9hG4bK${crypto.randomBytes(8).toString('hex')}`;

export class Dialog {
  private _state: DialogState;

  constructor(
    readonly snap: DialogSnapshot,
    state: DialogState = DialogState.Early,
  ) {
    this._state = state;
  }

  /** The dialog an initial INVITE creates on our side (UAS). */
  static fromInvite(v: ValidRequest, localTag: string, peer: { transport: 'udp' | 'tcp' | 'tls'; address: string; port: number }, media: Pick<DialogSnapshot, 'rtpPort' | 'remoteMedia' | 'codec' | 'payloadType' | 'eventPayloadType' | 'sdpSession' | 'sdpVersion' | 'mediaEncryption' | 'srtp'>): Dialog {
    const contact = v.req.headers.values('contact')[0];
    const target = contact ? parseNameAddr(contact)?.uri : undefined;
    return new Dialog({
      callId: v.callId,
      localTag,
      remoteTag: v.from.params.tag ?? '',
      localUri: formatNameAddr({ display: v.to.display, uri: v.to.uri, params: {} }),
      remoteUri: formatNameAddr({ display: v.from.display, uri: v.from.uri, params: {} }),
      remoteTarget: target ?? v.from.uri,
      routeSet: v.req.headers.values('record-route'),
      localCseq: Math.floor(Math.random() * 10000) + 1,
      remoteCseq: v.cseq.seq,
      transport: peer.transport,
      peer: { address: peer.address, port: peer.port },
      ...media,
    });
  }

  /**
   * The dialog a 2xx to our INVITE creates (UAC, RFC 3261 §12.1.2): the remote tag from To, the remote target
   * from Contact, the route set from Record-Route in reverse; our CSeq space continues from the INVITE's.
   */
  static fromAnswer(
    res: { headers: Headers },
    invite: { callId: string; localTag: string; localUri: string; remoteUri: string; requestUri: string; cseq: number },
    peer: { transport: 'udp' | 'tcp' | 'tls'; address: string; port: number },
    media: Pick<DialogSnapshot, 'rtpPort' | 'remoteMedia' | 'codec' | 'payloadType' | 'eventPayloadType' | 'sdpSession' | 'sdpVersion' | 'mediaEncryption' | 'srtp'>,
  ): Dialog {
    const to = parseNameAddr(res.headers.get('to') ?? '');
    const contact = res.headers.values('contact')[0];
    const target = contact ? parseNameAddr(contact)?.uri : undefined;
    return new Dialog(
      {
        callId: invite.callId,
        localTag: invite.localTag,
        remoteTag: to?.params.tag ?? '',
        localUri: invite.localUri,
        remoteUri: invite.remoteUri,
        remoteTarget: target ?? invite.requestUri,
        routeSet: res.headers.values('record-route').reverse(),
        localCseq: invite.cseq,
        remoteCseq: 0,
        transport: peer.transport,
        peer: { address: peer.address, port: peer.port },
        ...media,
      },
      DialogState.Confirmed,
    );
  }

  get state(): DialogState {
    return this._state;
  }
  get id(): string {
    return dialogId(this.snap.callId, this.snap.localTag, this.snap.remoteTag);
  }

  transition(to: DialogState): void {
    if (this._state === to) return;
    if (!EDGES[this._state].includes(to)) throw new Error(`dialog ${this.snap.callId}: ${this._state} → ${to} is not allowed`);
    this._state = to;
  }

  /** RFC 3261 §12.2.2: an in-dialog request with a lower CSeq than the last is out of order (500). */
  acceptRemoteCseq(seq: number, method: string): boolean {
    if (method === 'ACK' || method === 'CANCEL') return true;
    if (seq < this.snap.remoteCseq) return false;
    this.snap.remoteCseq = seq;
    return true;
  }

  /** Builds an in-dialog request (BYE, re-INVITE; the ACK of a 2xx with `cseq` = the INVITE's) and where to send it. */
  request(method: string, sentBy: string, opts: { body?: Buffer; contentType?: string; cseq?: number } = {}): { req: SipRequest; dest: { transport: 'udp' | 'tcp' | 'tls'; address: string; port: number } } {
    const s = this.snap;
    const h = new Headers();
    h.add('via', `${sentBy};branch=${newBranch()};rport`);
    h.add('max-forwards', '70');
    h.add('from', `${s.localUri};tag=${s.localTag}`);
    h.add('to', `${s.remoteUri};tag=${s.remoteTag}`);
    h.add('call-id', s.callId);
    if (opts.cseq === undefined) s.localCseq++;
    h.add('cseq', `${opts.cseq ?? s.localCseq} ${method}`);
    // Strict routing (no ;lr) is not supported: loose routes are sent as Route headers, in order.
    for (const r of s.routeSet) h.add('route', r);
    if (opts.body && opts.contentType) h.add('content-type', opts.contentType);
    const req: SipRequest = { kind: 'request', method, uri: s.remoteTarget, version: 'SIP/2.0', badStartLine: false, headers: h, body: opts.body ?? Buffer.alloc(0) };
    const first = s.routeSet[0] ? parseNameAddr(s.routeSet[0])?.uri : s.remoteTarget;
    const u = first ? parseSipUri(first) : null;
    const host = u?.host.replace(/^\[|\]$/g, '') ?? '';
    const param = u?.params.transport?.toLowerCase();
    // A TLS dialog stays on TLS (a sips: target or ;transport=tls asks for it too); TCP likewise.
    const transport = s.transport === 'tls' || param === 'tls' || u?.scheme === 'sips' ? 'tls' : s.transport === 'tcp' || param === 'tcp' ? 'tcp' : 'udp';
    // Over a stream, and whenever the target is not an address we can reach directly, use the address the dialog came from.
    const dest = transport !== 'udp' || !net.isIP(host) ? { address: s.peer.address, port: s.peer.port } : { address: host, port: u?.port ?? 5060 };
    return { req, dest: { transport, ...dest } };
  }
}

export const dialogId = (callId: string, localTag: string, remoteTag: string): string => `${callId}\u0000${localTag}\u0000${remoteTag}`;

const isInt = (n: unknown, min: number, max: number): n is number => typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;
const isText = (s: unknown): s is string => typeof s === 'string' && s.length > 0 && s.length <= 4096;

/**
 * Why a stored snapshot cannot carry a call on after a restart (null when it can): every field a socket or a
 * request will be built from is checked — the stored state came from the wire once, and a value that slipped
 * through then must end its call with a reason, not take the node down at every start.
 */
export function snapshotProblem(s: unknown): string | null {
  if (typeof s !== 'object' || s === null) return 'no dialog state';
  const d = s as Partial<Record<keyof DialogSnapshot, unknown>>;
  for (const k of ['callId', 'localTag', 'remoteTag', 'localUri', 'remoteUri', 'remoteTarget'] as const) if (!isText(d[k])) return `${k} is not usable`;
  if (!Array.isArray(d.routeSet) || !d.routeSet.every(isText)) return 'routeSet is not usable';
  if (!isInt(d.localCseq, 0, 2 ** 31 - 1) || !isInt(d.remoteCseq, 0, 2 ** 31 - 1)) return 'CSeq is not usable';
  if (d.transport !== 'udp' && d.transport !== 'tcp' && d.transport !== 'tls') return 'transport is not usable';
  const peer = d.peer as { address?: unknown; port?: unknown } | undefined;
  if (!peer || typeof peer.address !== 'string' || net.isIP(peer.address) === 0 || !isInt(peer.port, 1, 65535)) return 'peer address is not usable';
  if (!isInt(d.rtpPort, 1, 65534)) return 'RTP port is not usable';
  const media = d.remoteMedia as { address?: unknown; port?: unknown } | undefined;
  if (!media || typeof media.address !== 'string' || net.isIP(media.address) === 0 || !isInt(media.port, 1, 65534)) return 'remote media address is not usable';
  if (d.codec !== 'PCMU' && d.codec !== 'PCMA') return 'codec is not usable';
  if (!isInt(d.payloadType, 0, 127) || !(d.eventPayloadType === null || isInt(d.eventPayloadType, 0, 127))) return 'payload type is not usable';
  if (!isInt(d.sdpSession, 0, Number.MAX_SAFE_INTEGER) || !isInt(d.sdpVersion, 0, Number.MAX_SAFE_INTEGER)) return 'SDP session is not usable';
  const st = d.sessionTimer as { interval?: unknown; weRefresh?: unknown } | undefined;
  if (st !== undefined && (typeof st !== 'object' || st === null || !isInt(st.interval, 1, 2 ** 31 - 1) || typeof st.weRefresh !== 'boolean')) return 'session timer is not usable';
  if (d.peerAllowsUpdate !== undefined && typeof d.peerAllowsUpdate !== 'boolean') return 'peerAllowsUpdate is not usable';
  if (d.direction !== undefined && !['sendrecv', 'sendonly', 'recvonly', 'inactive'].includes(d.direction as string)) return 'direction is not usable';
  if (d.srtp !== undefined) return srtpResumeProblem(d.srtp);
  return null;
}
