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
  transport: 'udp' | 'tcp';
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
  static fromInvite(v: ValidRequest, localTag: string, peer: { transport: 'udp' | 'tcp'; address: string; port: number }, media: Pick<DialogSnapshot, 'rtpPort' | 'remoteMedia' | 'codec' | 'payloadType' | 'eventPayloadType' | 'sdpSession' | 'sdpVersion'>): Dialog {
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
    peer: { transport: 'udp' | 'tcp'; address: string; port: number },
    media: Pick<DialogSnapshot, 'rtpPort' | 'remoteMedia' | 'codec' | 'payloadType' | 'eventPayloadType' | 'sdpSession' | 'sdpVersion'>,
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
  request(method: string, sentBy: string, opts: { body?: Buffer; contentType?: string; cseq?: number } = {}): { req: SipRequest; dest: { transport: 'udp' | 'tcp'; address: string; port: number } } {
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
    const tcp = s.transport === 'tcp' || u?.params.transport?.toLowerCase() === 'tcp';
    // Over TCP, and whenever the target is not an address we can reach directly, use the address the dialog came from.
    const dest = tcp || !net.isIP(host) ? { address: s.peer.address, port: s.peer.port } : { address: host, port: u?.port ?? 5060 };
    return { req, dest: { transport: tcp ? 'tcp' : 'udp', ...dest } };
  }
}

export const dialogId = (callId: string, localTag: string, remoteTag: string): string => `${callId}\u0000${localTag}\u0000${remoteTag}`;
