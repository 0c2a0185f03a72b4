/**
 * SIP calls carried on after a restart (kill -9 included). Every SIP leg the store still has connected is resumed:
 * its RTP port re-bound, its dialog rebuilt from the stored snapshot (the media as last agreed, a re-INVITE's hold and
 * new address included), a fresh leg attached — the call passes through `resuming`.
 *
 *   stored leg ─► snapshotProblem? ─yes─► call ended `sip:resume-failed`
 *                     │ no
 *                     ▼
 *               re-bind RTP port ─fails─► call ended `sip:resume-failed`, BYE in the dialog
 *                     │
 *                     ▼
 *               SRTP? keys unsealed with the master key, the far end's ROC restored (srtp.ts) ─fails─► `sip:resume-failed`
 *                     │
 *                     ▼
 *               call_resume_requested ─► attach a new leg ─► carried on
 *
 * Cluster mode: only the calls this node owns (a call another cluster node owns is that node's, or, that node gone,
 * the takeover's: takeover.ts).
 *
 * Stored state never stops the node from starting: a call whose state is unusable, or whose resume throws, ends with
 * a reason and the next call is tried.
 */
import type { Logger } from 'pino';
import type { IngressStore } from '../port.ts';
import { PROVIDER, type SipCallControl } from './app.ts';
import { Dialog, DialogState, snapshotProblem, type DialogSnapshot } from './dialog.ts';
import type { SipLeg } from './leg.ts';
import { RtpSession, type RtpPortPool } from './rtp.ts';
import { openKeys, SrtpContext } from './srtp.ts';
import { loadWerift, weriftLoaded } from '../werift.ts';
import type { MasterKey } from '../../recording/master-key.ts';
import type { Peer } from './transport.ts';
import { call_resume_requested } from '../../schema/reducers.ts';

type CallRef = { tenant: string; callId: string };

/** What resuming needs of the SIP app. */
export interface ResumeHost {
  store: IngressStore;
  calls: SipCallControl;
  rtp: RtpPortPool;
  log: Logger;
  /** The recording master key, which sealed SRTP keys in the snapshot. */
  masterKey(): MasterKey;
  /** The address we are reached at by `peer` (SDP, Contact, Via). */
  localAddress(peer: Peer): string;
  /** Puts the rebuilt dialog in the app's table with its media; returns the call's new leg. */
  track(dialog: Dialog, rtp: RtpSession, ref: CallRef, held: boolean): SipLeg;
  endCall(ref: CallRef, reason: string, detail?: string): Promise<void>;
  /** Sends BYE in `dialog` (RFC 3261 §15.1.1) from our address for that transport. */
  bye(dialog: Dialog, transport: 'udp' | 'tcp' | 'tls', address: string): void;
}

/** Resumes every stored SIP call; returns how many were carried on. */
export async function resumeStoredDialogs(host: ResumeHost): Promise<number> {
  const db = host.store.read(null);
  let resumed = 0;
  for (const row of db.legs.find({ provider: PROVIDER, state: 'connected' })) {
    const call = db.calls.get(row.call_id);
    if (!call || call.state === 'ended') continue;
    // Cluster mode: another node's call is its own (or, that node gone, the takeover's: takeover.ts).
    if (call.owner_node !== null && call.owner_node !== host.store.node && (db.nodes.get(call.owner_node)?.lease_ms ?? null) !== null) continue;
    const ref = { tenant: call.tenant, callId: call.id };
    const problem = snapshotProblem(row.resume);
    if (problem) {
      host.log.warn({ call: call.id, problem }, 'SIP call cannot be resumed from its stored dialog: ending it');
      await host.endCall(ref, 'sip:resume-failed', problem).catch((err: unknown) => host.log.error({ err, call: call.id }, 'call_ended not recorded'));
      continue;
    }
    try {
      if (await resumeOne(host, ref, row.resume as unknown as DialogSnapshot)) resumed++;
    } catch (err) {
      host.log.error({ err, call: call.id }, 'SIP resume failed: ending the call');
      await host.endCall(ref, 'sip:resume-failed', (err as Error).message).catch(() => undefined);
    }
  }
  return resumed;
}

async function resumeOne(host: ResumeHost, ref: CallRef, snap: DialogSnapshot): Promise<boolean> {
  // An SRTP call's media waits for the ciphers (werift, not loaded at start: ingress/werift.ts).
  if (snap.srtp && !weriftLoaded()) await loadWerift();
  const dialog = new Dialog({ ...snap, routeSet: [...snap.routeSet] }, DialogState.Confirmed);
  const peer: Peer = { transport: snap.transport, address: snap.peer.address, port: snap.peer.port };
  const address = host.localAddress(peer);
  const sockets = await host.rtp.bindExact(snap.rtpPort).catch((err: unknown) => {
    host.log.warn({ err: (err as Error).message, call: ref.callId }, 'RTP port of a live SIP call cannot be re-bound: ending it');
    return null;
  });
  if (!sockets) {
    await host.endCall(ref, 'sip:resume-failed');
    host.bye(dialog, snap.transport, address);
    return false;
  }
  // As last agreed (a re-INVITE's hold and new address are in the snapshot).
  const direction = snap.direction ?? 'sendrecv';
  const held = direction === 'recvonly' || direction === 'inactive';
  const media = { codec: snap.codec, payloadType: snap.payloadType, eventPayloadType: snap.eventPayloadType, remote: snap.remoteMedia, direction, held };
  const rtp = new RtpSession(sockets, media, `switchboard@${address}`);
  if (snap.srtp) {
    // The keys as agreed, unsealed with the master key; the far end's ROC as last stored (srtp.ts).
    try {
      rtp.srtp = new SrtpContext(openKeys(snap.srtp, host.masterKey(), snap.callId));
    } catch (err) {
      rtp.close();
      host.rtp.release(snap.rtpPort);
      throw err;
    }
    rtp.srtp.restore(snap.srtp.inbound ?? []);
  }
  const leg = host.track(dialog, rtp, ref, held);
  await host.calls.resume(ref, 'sip: node restarted', { caller: 'sip:resume' });
  await host.calls.attach(ref, leg).catch((err: unknown) => host.log.warn({ err, call: ref.callId }, 'SIP resume: attach refused'));
  host.log.info({ callId: snap.callId, call: ref.callId, rtp: snap.rtpPort }, 'SIP call resumed after restart');
  return true;
}
