/**
 * Session refresh requests we send (RFC 4028 §7.4 / §8): as the refresher of a dialog — UAS or UAC — an UPDATE
 * without a body when the peer's Allow lists UPDATE (RFC 3311; §7.4 prefers it: no offer/answer), else a re-INVITE
 * offering the session as it is (same o= version: nothing changes, RFC 3264 §8) whose 2xx we ACK (again for each
 * retransmitted 2xx). The answer's Session-Expires, if any, gives the next interval.
 *
 *   refresh due ─► UPDATE / re-INVITE (Session-Expires: N;refresher=uac, Min-SE, Supported: timer)
 *                   ├─ 2xx ─► (re-INVITE: ACK) ─► { status, interval, weRefresh } ─► timer restarts
 *                   └─ other final / no answer (64·T1) ─► { status | null } ─► the caller ends the call
 */
import type { Dialog } from './dialog.ts';
import type { SipResponse } from './message.ts';
import { timerFromAnswer } from './session-timer.ts';
import type { SipUas } from './uas.ts';
import { ALLOW, SUPPORTED } from './validate.ts';

export interface RefreshOutcome {
  /** The final status, null when nothing answered. */
  status: number | null;
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
        if (res.status >= 300) return done({ status: res.status });
        const t = timerFromAnswer(res.headers);
        done({ status: res.status, next: t ? { interval: t.interval, weRefresh: t.refresher === 'uac' } : { interval: r.interval, weRefresh: true } });
      },
      timeout: () => done({ status: null }),
    });
  });
}
