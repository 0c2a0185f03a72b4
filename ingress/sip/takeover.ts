/**
 * SIP call takeover in cluster mode (issue 15): when the log says a node is `lost` (its lease ran out) or `stopped`
 * (a drain whose time limit ran out, a shutdown) while it still owns live SIP calls, every surviving node races to
 * claim each of them; the log's order lets exactly one win (the claim rule, schema/nodes.ts `claimRefusal`). The
 * winner carries the call on from the dialog stored in the log — a node that never had the dialog — and moves the
 * caller to itself with a target refresh (RFC 3261 §12.2): a re-INVITE in the dialog with its own Contact and an
 * SDP offer with its own address and RTP port, sent through the route set (the proxy's Record-Route).
 *
 *   poll nodes (1 s) ─► node lost/stopped (cluster: it has a lease) ─► its SIP calls, not ended
 *     ─► no caller leg (never answered: the INVITE transaction died with the node) ─► `sip:node-lost`
 *     ─► snapshotProblem? ─yes─► `sip:takeover-failed`
 *     ─► call_media_lost on the dead node's leg (the call goes `resuming`; refused when a rival did it first: fine)
 *     ─► bind an RTP port of ours, rebuild the dialog (CSeq chosen safely high, see `takeoverCseq`)
 *     ─► attach a leg = the claim (call_media_connected) ─refused call_owned─► another node won: nothing sent
 *     ─► re-INVITE (Contact: ours; SDP: same o= session id, version + 1, our c=/m=; SRTP: a fresh SDES key) to
 *        the first route (the proxy), else the remote target (`routeDestination`)
 *          ├─ 2xx ─► ACK (every 2xx) ─► the answer's media (and Contact: the new remote target) in use and stored
 *          └─ 481 / 408 / other final / no answer ─► call ended `sip:takeover-failed` (BYE unless 481)
 *
 * From the 2xx on, the caller sends RTP to our port and its in-dialog requests (BYE) to our Contact; meanwhile the
 * agent already talks from here (the caller's address is in the stored dialog). The dead node's INVITE transactions
 * in progress (calls not yet answered) are not in the log and die with it.
 *
 * Embedded mode (one node, no leases) never takes anything over: a restarted node resumes its own calls (resume.ts).
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { IngressStore } from '../port.ts';
import type { MasterKey } from '../../recording/master-key.ts';
import { PROVIDER, type SipCallControl } from './app.ts';
import { Dialog, DialogState, snapshotProblem, type DialogSnapshot } from './dialog.ts';
import { parseNameAddr, parseSipUri } from './headers.ts';
import type { SipLeg } from './leg.ts';
import type { SipResponse } from './message.ts';
import { RtpSession, type RtpPortPool } from './rtp.ts';
import { negotiate, offerSdp } from './sdp.ts';
import { answerSrtp, offerCrypto } from './sdes.ts';
import { encryptionFields, openKeys, SrtpContext } from './srtp.ts';
import type { Peer } from './transport.ts';
import { loadWerift } from '../werift.ts';
import type { SipUas } from './uas.ts';
import { ALLOW, SUPPORTED } from './validate.ts';

type CallRef = { tenant: string; callId: string };

/** What a taken-over call looks like to the app (its CallCtx). */
export interface TakenCall {
  dialog: Dialog;
  rtp: RtpSession;
  leg: SipLeg;
  ref: CallRef;
  /** True until the claim is granted: a leg closed meanwhile (the claim refused) sends no BYE. */
  claimPending?: boolean;
}

export interface TakeoverHost<C extends TakenCall> {
  store: IngressStore;
  calls: Pick<SipCallControl, 'attach' | 'mediaLost' | 'mediaUpdated'>;
  rtp: RtpPortPool;
  log: Logger;
  uas(): SipUas;
  masterKey(): MasterKey;
  localAddress(peer: Peer): string;
  contact(peer: Peer): string;
  /** Puts the rebuilt dialog in the app's table with its media (its leg built, not attached). */
  track(dialog: Dialog, rtp: RtpSession, ref: CallRef, held: boolean): C;
  endCall(ref: CallRef, reason: string, detail?: string): Promise<void>;
  /** `call_ended` with the reason, then the leg closes (BYE unless the leg was marked remote-ended). */
  endThenClose(call: C, reason: string, detail: string): void;
}

/** The end reason of a call this node won but could not move to itself. */
export const TAKEOVER_FAILED = 'sip:takeover-failed';

/** The end reason of a SIP call the dead node had not answered yet (nothing to take over). */
export const NODE_LOST = 'sip:node-lost';

/** How often the node table is looked at (ms). The log is the trigger; this is only how soon it is noticed. */
const POLL_MS = 1000;

/**
 * The CSeq of our first request in a dialog another node ran (RFC 3261 §12.2.1.1: above every CSeq it sent). The
 * store has the dead node's local CSeq as of its last stored snapshot; since then it may have sent session refreshes
 * (one per half interval, the interval ≥ 90 s by RFC 4028's floor, so ≤ 1 per 45 s, plus one retry after a 491/422)
 * and nothing else that kept the dialog alive (a BYE ends it). So: the stored value + 16 + 2 per 45 s elapsed since
 * the leg connected (an upper bound of the time since the snapshot). A receiver only requires it to be higher.
 */
export function takeoverCseq(stored: number, elapsedMs: number): number {
  return Math.min(2 ** 31 - 1, stored + 16 + 2 * Math.ceil(Math.max(0, elapsedMs) / 45_000));
}

/**
 * Where our re-INVITE goes: the first route's address (a proxy) when there is a route set, else the remote target —
 * over UDP as Dialog does, and over TCP/TLS a new connection to the target's address (the dead node's connection
 * came from the caller's ephemeral port, which takes none). A target that is not an IP literal: `fallback`.
 */
export function routeDestination(snap: DialogSnapshot, fallback: { transport: Peer['transport']; address: string; port: number }): { transport: Peer['transport']; address: string; port: number } {
  const first = snap.routeSet[0] ? parseNameAddr(snap.routeSet[0])?.uri : snap.remoteTarget;
  const u = first ? parseSipUri(first) : null;
  if (!u || net.isIP(u.host.replace(/^\[|\]$/g, '')) === 0) return fallback;
  const host = u.host.replace(/^\[|\]$/g, '');
  const param = u.params.transport?.toLowerCase();
  const transport = snap.transport === 'tls' || param === 'tls' || u.scheme === 'sips' ? 'tls' : param === 'tcp' ? 'tcp' : param === 'udp' ? 'udp' : snap.transport;
  return { transport, address: host, port: u.port ?? (transport === 'tls' ? 5061 : 5060) };
}

export class SipTakeover<C extends TakenCall> {
  private timer: NodeJS.Timeout | null = null;
  /** Calls this node has tried (won, lost or failed): never twice. */
  private readonly tried = new Set<string>();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly host: TakeoverHost<C>) {}

  /** Looks at the node table every second (again after `stop`; a second call while running does nothing). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      try {
        this.poll();
      } catch (err) {
        // The store closing under a shutdown, say: the node goes on, the next look may succeed.
        this.host.log.warn({ err }, 'SIP takeover: the node table could not be read');
      }
    }, POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Settles once every takeover in flight has (tests). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  /** One look at the node table: the live SIP calls of nodes gone, taken over (tried once each). */
  poll(): void {
    const { store } = this.host;
    const db = store.read(null);
    const me = db.nodes.get(store.node);
    // Only a live cluster node takes calls over (a draining one takes no new calls; embedded mode has no leases).
    if (!me || me.state !== 'alive' || me.lease_ms === null) return;
    for (const node of db.nodes.find({ state: ['lost', 'stopped'] })) {
      if (node.id === store.node || node.lease_ms === null) continue;
      for (const call of db.calls.find({ owner_node: node.id })) {
        if (call.state === 'ended' || call.provider !== PROVIDER || this.tried.has(call.id)) continue;
        this.tried.add(call.id);
        const run = this.takeOne(node.id, { tenant: call.tenant, callId: call.id }).catch((err: unknown) => {
          // Ours, or still the dead node's (no RTP port here, say): ended. Another node's by now: its to carry on.
          const owner = store.read(null).calls.get(call.id)?.owner_node;
          if (owner !== node.id && owner !== store.node) return this.host.log.warn({ err, call: call.id, owner }, 'SIP takeover failed here; another node carries the call');
          this.host.log.error({ err, call: call.id }, 'SIP takeover failed: ending the call');
          return this.host.endCall({ tenant: call.tenant, callId: call.id }, TAKEOVER_FAILED, (err as Error).message).catch(() => undefined);
        });
        this.running.add(run);
        void run.finally(() => this.running.delete(run));
      }
    }
  }

  private async takeOne(lost: string, ref: CallRef): Promise<void> {
    const { host } = this;
    const db = host.store.read(null);
    let latest: ReturnType<typeof db.legs.find>[number] | undefined;
    for (const leg of db.legs.find({ call_id: ref.callId, kind: 'caller' })) if (!latest || leg.connected_at >= latest.connected_at) latest = leg;
    if (!latest) {
      // Never answered: its INVITE transaction (ours, for an outbound call) died with the node; nothing to move.
      return host.endCall(ref, NODE_LOST, `not answered when node ${lost} was lost: its INVITE transaction died with it`);
    }
    if (latest.provider !== PROVIDER) return;
    const problem = snapshotProblem(latest.resume);
    if (problem) return host.endCall(ref, TAKEOVER_FAILED, `stored dialog: ${problem}`);
    const stored = latest.resume as unknown as DialogSnapshot;
    host.log.warn({ call: ref.callId, callId: stored.callId, lost }, `node ${lost} is gone: taking its SIP call over`);
    // The dead node's media is gone: the call waits in `resuming` (a rival that did this first makes it refused).
    if (latest.state === 'connected') await host.calls.mediaLost(ref, latest.id, `node ${lost} lost: SIP call taken over`).catch(() => undefined);
    // An SRTP call's ciphers are werift's, loaded on first use (ingress/werift.ts): loaded before any port is taken.
    if (stored.srtp || stored.mediaEncryption === 'srtp') await loadWerift();
    const sockets = await host.rtp.bind();
    const peer: Peer = { transport: stored.transport, address: stored.peer.address, port: stored.peer.port };
    const dest = routeDestination(stored, { transport: stored.transport, ...stored.peer });
    const snap: DialogSnapshot = {
      ...stored,
      routeSet: [...stored.routeSet],
      rtpPort: sockets.port,
      localCseq: takeoverCseq(stored.localCseq, Date.now() - latest.connected_at),
      sdpVersion: stored.sdpVersion + 1,
      // A stream to a proxy is reached at its listening address, not the port the dead node's connection came from.
      peer: stored.transport === 'udp' ? stored.peer : { address: dest.address, port: dest.port },
    };
    const dialog = new Dialog(snap, DialogState.Confirmed);
    const address = host.localAddress(peer);
    const direction = snap.direction ?? 'sendrecv';
    const held = direction === 'recvonly' || direction === 'inactive';
    const rtp = new RtpSession(sockets, { codec: snap.codec, payloadType: snap.payloadType, eventPayloadType: snap.eventPayloadType, remote: snap.remoteMedia, direction, held }, `switchboard@${address}`);
    if (snap.srtp) {
      // Until the answer brings new keys, the keys agreed with the dead node (a new SSRC of ours).
      try {
        rtp.srtp = new SrtpContext(openKeys(snap.srtp, host.masterKey(), snap.callId));
      } catch (err) {
        rtp.close();
        host.rtp.release(sockets.port);
        throw err;
      }
    }
    const call = host.track(dialog, rtp, ref, held);
    call.claimPending = true;
    try {
      await host.calls.attach(ref, call.leg);
    } catch (err) {
      host.log.info({ call: ref.callId, reason: (err as Error).message }, 'SIP takeover: another node claimed the call first');
      return;
    }
    call.claimPending = false;
    await this.refreshTarget(call, address, dest);
  }

  /** The re-INVITE (target refresh) and what its answer does to the call. */
  private async refreshTarget(call: C, address: string, dest: { transport: Peer['transport']; address: string; port: number }): Promise<void> {
    const { host } = this;
    const snap = call.dialog.snap;
    const peer: Peer = { transport: snap.transport, address: snap.peer.address, port: snap.peer.port };
    const crypto = snap.mediaEncryption === 'srtp' ? { ...offerCrypto(), required: true } : null;
    const local = { address, port: call.rtp.port, sessionId: snap.sdpSession, sessionVersion: snap.sdpVersion };
    const offer = offerSdp(local, crypto ?? undefined);
    const res = await this.reinvite(call, offer, host.contact(peer), address, dest);
    if (!res || res.status >= 300) {
      const status = res?.status ?? null;
      host.log.warn({ call: call.ref.callId, callId: snap.callId, status }, 'SIP takeover: the re-INVITE failed, ending the call');
      if (status === 481) call.leg.markRemoteEnded();
      return host.endThenClose(call, TAKEOVER_FAILED, `re-INVITE answered ${status ?? 'nothing (timeout)'}`);
    }
    const answer = res.body.toString('utf8');
    const neg = negotiate(answer, local);
    const srtp = crypto ? answerSrtp(answer, crypto) : { ok: true as const, agreed: undefined };
    if (!neg.ok || !srtp.ok) {
      const why = !neg.ok ? neg.warning : srtp.ok ? '' : srtp.reason;
      return host.endThenClose(call, TAKEOVER_FAILED, `the answer to the re-INVITE is not usable: ${why}`);
    }
    Object.assign(snap, {
      remoteMedia: neg.media.remote,
      codec: neg.media.codec,
      payloadType: neg.media.payloadType,
      eventPayloadType: neg.media.eventPayloadType,
      direction: neg.media.direction,
      ...(crypto ? encryptionFields(srtp.agreed, host.masterKey, snap.callId) : {}),
    });
    if (srtp.agreed) call.rtp.srtp = new SrtpContext(srtp.agreed.keys);
    call.rtp.update(neg.media);
    call.leg.updateMedia();
    const stored = await host.calls.mediaUpdated(call.ref, { provider: PROVIDER, codec: snap.codec, resume: { ...snap } as unknown as Record<string, unknown> }, { caller: 'sip:takeover' });
    if (!stored.ok) host.log.warn({ call: call.ref.callId, outcome: stored }, 'SIP takeover: the new dialog state is not stored (a restart would carry on with the one before)');
    host.log.info({ call: call.ref.callId, callId: snap.callId, rtp: call.rtp.port, remote: neg.media.remote, media: srtp.agreed ? `srtp ${srtp.agreed.keys.suite}` : 'rtp' }, 'SIP call taken over: the caller moved to this node');
  }

  /** Sends the re-INVITE through the route set; ACKs every 2xx; resolves with the final response (null: none). */
  private reinvite(call: C, offer: string, contact: string, address: string, dest: { transport: Peer['transport']; address: string; port: number }): Promise<SipResponse | null> {
    const uas = this.host.uas();
    const snap = call.dialog.snap;
    const sentBy = uas.transport.sentBy(dest.transport, address);
    const { req } = call.dialog.request('INVITE', sentBy, { body: Buffer.from(offer), contentType: 'application/sdp' });
    const cseq = snap.localCseq;
    req.headers.add('contact', contact);
    req.headers.add('supported', SUPPORTED.join(', '));
    req.headers.add('allow', ALLOW.join(', '));
    return new Promise((resolve) => {
      let settled = false;
      uas.startClient(req, dest, {
        response: (res: SipResponse) => {
          if (res.status < 200) return;
          if (res.status < 300) {
            // A target refresh both ways (RFC 3261 §12.2.1.2): the 2xx's Contact is the remote target from now on.
            const contact = res.headers.values('contact')[0];
            const target = contact ? parseNameAddr(contact)?.uri : undefined;
            if (target) snap.remoteTarget = target;
            const ack = call.dialog.request('ACK', sentBy, { cseq });
            uas.transport.sendRequest(ack.req, dest);
          }
          if (!settled) resolve(res);
          settled = true;
        },
        timeout: () => {
          if (!settled) resolve(null);
          settled = true;
        },
      });
    });
  }
}
