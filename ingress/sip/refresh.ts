/**
 * Session timers of live calls (RFC 4028) and the refresh requests we send (§7.4 / §8). `SessionRefresher` keeps
 * each call's SessionTimer (session-timer.ts) in step with the last refresh request's decision, refreshes when we
 * are the refresher and ends the call (`sip:session-expired`, BYE) when the peer's refresh never comes or ours fails.
 * Refresh requests (RFC 4028 §7.4 / §8): as the refresher of a dialog — UAS or UAC — an UPDATE
 * without a body when the peer's Allow lists UPDATE (RFC 3311; §7.4 prefers it: no offer/answer), else a re-INVITE
 * offering the session as it is (same o= version: nothing changes, RFC 3264 §8) whose 2xx we ACK (again for each
 * retransmitted 2xx). The answer's Session-Expires, if any, gives the next interval.
 *
 *   refresh due ─► UPDATE / re-INVITE (Session-Expires: N;refresher=uac, Min-SE, Supported: timer)
 *                   ├─ 2xx ─► (re-INVITE: ACK) ─► { status, interval, weRefresh } ─► timer restarts
 *                   ├─ 491 ─► wait 2.1–4 s (our Call-ID) or 0–2 s (the peer's), RFC 3261 §14.1 ─► sent once more
 *                   ├─ 422 + Min-SE: M > N ─► sent once more with Session-Expires: M, Min-SE: M (RFC 4028 §7.4)
 *                   └─ other final / no answer (64·T1) / a failed retry ─► BYE, `sip:session-expired`
 */
import type { Logger } from 'pino';
import { DialogState, type Dialog } from './dialog.ts';
import type { SipResponse } from './message.ts';
import { currentAnswer } from './sdp.ts';
import { parseMinSe, SessionTimer, timerFromAnswer, type UasTimerDecision } from './session-timer.ts';
import type { Peer } from './transport.ts';
import type { SipUas } from './uas.ts';
import { ALLOW, SUPPORTED } from './validate.ts';

export interface RefreshOutcome {
  /** The final status, null when nothing answered. */
  status: number | null;
  /** From a 422 (RFC 4028 §6): the peer's Min-SE, seconds. */
  minSe?: number;
  /** From a 2xx: the interval and who refreshes next (absent Session-Expires in the 2xx: ours, we refresh). */
  next?: { interval: number; weRefresh: boolean };
}

export interface RefreshRequest {
  sentBy: string;
  contact: string;
  interval: number;
  minSe: number;
  /** Send UPDATE (the peer allows it) rather than a re-INVITE. */
  update: boolean;
  /** The SDP of the session as it is (re-INVITE offer). */
  sdp: () => string;
}

const optional = (minSe: number | null): { minSe?: number } => (minSe === null ? {} : { minSe });

/** Sends one refresh for `dialog` and resolves with what came of it. */
export function sendRefresh(uas: SipUas, dialog: Dialog, r: RefreshRequest): Promise<RefreshOutcome> {
  const method = r.update ? 'UPDATE' : 'INVITE';
  const body = r.update ? undefined : Buffer.from(r.sdp());
  const { req, dest } = dialog.request(method, r.sentBy, { body, contentType: body ? 'application/sdp' : undefined });
  const cseq = dialog.snap.localCseq;
  req.headers.add('contact', r.contact);
  req.headers.add('session-expires', `${r.interval};refresher=uac`);
  req.headers.add('min-se', String(r.minSe));
  req.headers.add('supported', SUPPORTED.join(', '));
  req.headers.add('allow', ALLOW.join(', '));
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: RefreshOutcome): void => {
      if (!settled) resolve(o);
      settled = true;
    };
    uas.startClient(req, dest, {
      response: (res: SipResponse) => {
        if (res.status < 200) return;
        if (res.status < 300 && method === 'INVITE') {
          // Every 2xx (retransmissions too) gets its ACK (RFC 3261 §13.2.2.4).
          const ack = dialog.request('ACK', r.sentBy, { cseq });
          uas.transport.sendRequest(ack.req, ack.dest);
        }
        if (res.status === 422) return done({ status: 422, ...optional(parseMinSe(res.headers.get('min-se'))) });
        if (res.status >= 300) return done({ status: res.status });
        const t = timerFromAnswer(res.headers);
        done({ status: res.status, next: t ? { interval: t.interval, weRefresh: t.refresher === 'uac' } : { interval: r.interval, weRefresh: true } });
      },
      timeout: () => done({ status: null }),
    });
  });
}

/** What of a live call the refresher uses (SipApp's call context). */
export interface TimedCall {
  dialog: Dialog;
  rtp: { port: number };
  held: boolean;
  ref: { callId: string };
  timer: SessionTimer | null;
}

export interface RefresherDeps<C extends TimedCall> {
  uas: () => SipUas;
  log: Logger;
  minSe: number;
  localAddress(peer: Peer): string;
  contact(peer: Peer): string;
  /** Ends the call (call_ended with the reason, then BYE). */
  end(call: C, reason: string, detail: string): void;
  /** Runs a promise nobody awaits, its failure logged. */
  detach(p: Promise<unknown>, call: string, what: string): void;
  /** The delay before retrying a refresh answered 491 (default `retryDelayMs`, RFC 3261 §14.1). */
  retryDelayMs?: (ownCallId: boolean) => number;
  /** Waits `ms` (default a timer; tests inject one that resolves when they say). */
  wait?: (ms: number) => Promise<void>;
}

export class SessionRefresher<C extends TimedCall> {
  constructor(private readonly d: RefresherDeps<C>) {}

  /** RFC 4028 §9: the decision of the last refresh request (INVITE, re-INVITE, UPDATE) sets or removes the timer. */
  apply(call: C, decision: UasTimerDecision): void {
    if (decision.kind !== 'timer') {
      call.dialog.snap.sessionTimer = undefined;
      call.timer?.stop();
      return;
    }
    call.dialog.snap.sessionTimer = { interval: decision.interval, weRefresh: decision.refresher === 'uas' };
    this.start(call);
  }

  /** (Re)starts the call's timer from its dialog's stored interval (a new call, an adopted or resumed one). */
  start(call: C): void {
    const st = call.dialog.snap.sessionTimer;
    if (!st) return;
    call.timer ??= new SessionTimer({
      refresh: () => this.d.detach(this.refresh(call), call.ref.callId, 'session refresh failed'),
      expire: () => {
        this.d.log.warn({ call: call.ref.callId, callId: call.dialog.snap.callId, interval: call.timer?.interval }, 'session expired: no refresh from the peer, ending the call with BYE');
        this.d.end(call, 'sip:session-expired', 'no session refresh before Session-Expires');
      },
    });
    call.timer.refreshed(st.interval, st.weRefresh);
  }

  /**
   * We are the refresher (RFC 4028 §7.4): UPDATE or re-INVITE. A 491 (the peer's offer crossed ours) is retried once
   * after RFC 3261 §14.1's random delay; a 422 once with Session-Expires (and Min-SE) raised to the peer's Min-SE
   * (§7.4). Any other failure, or a failed retry, ends the call `sip:session-expired`.
   */
  private async refresh(call: C): Promise<void> {
    const st = call.dialog.snap.sessionTimer;
    if (!st || call.dialog.state === DialogState.Terminated) return;
    let out = await this.send(call, st.interval, this.d.minSe);
    if (out.status === 491 && this.live(call)) {
      const ms = (this.d.retryDelayMs ?? retryDelayMs)(weOwnCallId(call.dialog.snap.callId));
      this.d.log.info({ call: call.ref.callId, delayMs: Math.round(ms) }, 'session refresh answered 491: retrying after the RFC 3261 §14.1 delay');
      await (this.d.wait ?? wait)(ms);
      if (this.live(call)) out = await this.send(call, st.interval, this.d.minSe);
    } else if (out.status === 422 && out.minSe !== undefined && out.minSe > st.interval && this.live(call)) {
      this.d.log.info({ call: call.ref.callId, interval: st.interval, peerMinSe: out.minSe }, 'session refresh answered 422: retrying with Session-Expires raised to the peer\'s Min-SE');
      out = await this.send(call, out.minSe, Math.max(this.d.minSe, out.minSe));
    }
    if (!this.live(call)) return;
    if (out.next) {
      this.d.log.debug({ call: call.ref.callId, status: out.status, next: out.next }, 'session refreshed');
      call.dialog.snap.sessionTimer = out.next;
      return call.timer?.refreshed(out.next.interval, out.next.weRefresh);
    }
    this.d.end(call, 'sip:session-expired', `session refresh answered ${out.status ?? 'nothing'}`);
  }

  /** The call is still ours to refresh (not ended, its timer not stopped meanwhile). */
  private live(call: C): boolean {
    return call.dialog.state !== DialogState.Terminated && call.timer !== null && call.timer.state !== 'stopped';
  }

  private send(call: C, interval: number, minSe: number): Promise<RefreshOutcome> {
    const snap = call.dialog.snap;
    const peer: Peer = { transport: snap.transport, address: snap.peer.address, port: snap.peer.port };
    const address = this.d.localAddress(peer);
    const uas = this.d.uas();
    return sendRefresh(uas, call.dialog, {
      sentBy: uas.transport.sentBy(snap.transport, address),
      contact: this.d.contact(peer),
      interval,
      minSe,
      update: snap.peerAllowsUpdate === true,
      sdp: () => currentAnswer(snap, call.rtp.port, call.held, address),
    });
  }
}

/**
 * RFC 3261 §14.1: after a 491, the UAC retries after 2.1–4 s when it generated the dialog's Call-ID, 0–2 s
 * otherwise (so two UAs that collided do not collide again).
 */
export function retryDelayMs(ownCallId: boolean): number {
  return ownCallId ? 2100 + Math.random() * 1900 : Math.random() * 2000;
}

/** The Call-IDs we generate (uac.ts, outbound calls) end in `@switchboard`; an inbound dialog's Call-ID is the caller's. */
export const weOwnCallId = (callId: string): boolean => callId.endsWith('@switchboard');

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
