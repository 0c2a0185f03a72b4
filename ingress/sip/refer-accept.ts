/**
 * A REFER from the far end, on a route whose SWITCHBOARD_SIP_REFER says `accept` (refer.ts): RFC 3515 with the
 * implicit subscription, the gateway as the transferee. The far end is a person bridged into a call by a transfer
 * (a human on a PBX that a warm transfer dialled); it hands the call onward to the Refer-To target:
 *
 *   REFER ─► Refer-To checked: none, several, not a sip:/sips:/tel: URI, or one carrying header fields
 *            (`?Replaces=…`: attended transfer, not supported) ─► 400 Bad Request (<why>)    (RFC 3515 §2.4.2)
 *         ─► the call cannot be handed on (this dialog is not a person bridged into a call — the agent itself is
 *            never transferred — or that call runs on another node) ─► 403 (<why>) + Warning, the call goes on
 *         ─► 202 Accepted ─► NOTIFY `SIP/2.0 100 Trying` (Subscription-State: active;expires=60)
 *            ─► the target is dialled through the dial router (bridge/transfer-dial.ts `referOnward`); the caller
 *               and the person go on talking meanwhile
 *            ─► answered: the target replaces the person in the caller's mixer (`refer:bridged` row) ─► NOTIFY
 *               `SIP/2.0 200 OK` (Subscription-State: terminated;reason=noresource) ─► this dialog ends
 *               `sip:referred` with BYE (unless the transferor sent BYE first, RFC 5589 §6)
 *            ─► failed: NOTIFY with the target's final status (486 busy, 603 declined, 408 unanswered in time,
 *               404 …; 503 when the dial router could not place the call at all) and `terminated;reason=noresource`;
 *               the call goes on as it was.
 *
 * A target the dial router cannot reach is accepted (202) and then reported in the NOTIFY (503): RFC 3515 §2.4.4-5
 * reports the outcome of the referenced request, which includes it failing before it was sent; a 4xx to the REFER is
 * for a REFER that is itself wrong (§2.4.2).
 */
import type { Logger } from 'pino';
import type { Dialled } from '../../bridge/transfer-dial.ts';
import { DialogState, type Dialog } from './dialog.ts';
import { parseSipUri } from './headers.ts';
import type { SipRequest } from './message.ts';
import type { NonInviteServerTransaction } from './transaction.ts';
import { telTarget } from './trunk-routes.ts';
import type { ValidRequest } from './validate.ts';

export const REFERRED_REASON = 'sip:referred';

export interface ReferAcceptDeps {
  log: Logger;
  respond: (tx: NonInviteServerTransaction, status: number, opts?: { reason?: string; headers?: Array<[string, string]> }) => void;
  /** Sends an in-dialog request, resolves its final status (null: no answer). */
  send: (dialog: Dialog, method: string, build: (req: SipRequest) => void) => Promise<number | null>;
  /** Call control's `referred` (bridge/call-control.ts). */
  referred: (ref: { tenant: string; callId: string }, target: string) => { refused: string } | { done: Promise<Dialled> };
  /** Ends the referring call `sip:referred` and sends BYE on its dialog (when it is still up). */
  endReferred: () => void;
}

/** The one Refer-To URI of a REFER, or why it is not usable (a 400's reason). */
export function referToTarget(req: SipRequest): { ok: true; uri: string } | { ok: false; why: string } {
  const values = req.headers.lines('refer-to');
  if (values.length === 0) return { ok: false, why: 'no Refer-To' };
  if (values.length > 1) return { ok: false, why: 'more than one Refer-To' };
  const raw = (values[0] ?? '').trim();
  const uri = (/^[^<]*<([^>]*)>/.exec(raw)?.[1] ?? raw.split(';')[0] ?? '').trim();
  if (uri === '') return { ok: false, why: 'an empty Refer-To' };
  if (/^tel:/i.test(uri)) return telTarget(uri) !== null && !uri.includes('?') ? { ok: true, uri } : { ok: false, why: 'Refer-To is not a global tel: number (tel:+E.164)' };
  if (!/^sips?:/i.test(uri)) return { ok: false, why: 'Refer-To must be a sip:, sips: or tel: URI' };
  const sip = parseSipUri(uri);
  if (!sip || sip.host === '') return { ok: false, why: 'Refer-To is not a valid SIP URI' };
  if (sip.headers !== null) return { ok: false, why: 'Refer-To with header fields (Replaces: attended transfer) is not supported' };
  return { ok: true, uri };
}

const PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  200: 'OK',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  480: 'Temporarily Unavailable',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  500: 'Server Internal Error',
  503: 'Service Unavailable',
  600: 'Busy Everywhere',
  603: 'Decline',
};

/** The final status a failed call onward is reported with (the dialled call's own SIP status when it has one). */
export function failureStatus(out: Extract<Dialled, { ok: false }>): number {
  const r = (out.endReason ?? '').toLowerCase();
  const named: Record<string, number> = { 'sip:busy': 486, 'sip:declined': 603, 'sip:not-found': 404, 'sip:unavailable': 480, 'sip:timeout': 408, 'sip:cancelled': 487, 'sip:incompatible-media': 488 };
  if (named[r] !== undefined) return named[r];
  const numbered = /^sip:(?:redirected|server-error|rejected)-(\d{3})$/.exec(r);
  if (numbered) return Number(numbered[1]);
  if (out.endReason === null && out.callId === null) return 503; // the dial router could not place the call
  switch (out.reason) {
    case 'busy':
      return 486;
    case 'declined':
      return 603;
    case 'no_answer':
    case 'timeout':
      return 408;
    default:
      return 503;
  }
}

export function sipfrag(status: number): string {
  return `SIP/2.0 ${status} ${PHRASES[status] ?? (status < 300 ? 'OK' : 'Failed')}\r\n`;
}

/** Handles one REFER on an `accept` route (see the header). */
export function acceptRefer(deps: ReferAcceptDeps, tx: NonInviteServerTransaction, v: ValidRequest, dialog: Dialog, ref: { tenant: string; callId: string }, host: string): void {
  const target = referToTarget(v.req);
  if (!target.ok) {
    deps.log.info({ callId: v.callId, referTo: v.req.headers.get('refer-to') ?? null, why: target.why }, 'REFER refused: bad Refer-To');
    return deps.respond(tx, 400, { reason: `Bad Request (${target.why})` });
  }
  const r = deps.referred(ref, target.uri);
  if ('refused' in r) {
    deps.log.info({ callId: v.callId, referTo: target.uri, why: r.refused }, 'REFER refused');
    return deps.respond(tx, 403, { reason: `Forbidden (${r.refused})`, headers: [['Warning', `399 ${host} "${r.refused}"`]] });
  }
  deps.respond(tx, 202, { reason: 'Accepted' });
  deps.log.info({ callId: v.callId, call: ref.callId, referTo: target.uri }, 'REFER accepted: dialling the target');
  const event = `refer;id=${v.cseq.seq}`;
  const notify = (status: number, state: string): Promise<number | null> => {
    if (dialog.state === DialogState.Terminated) return Promise.resolve(null); // the transferor hung up already
    return deps.send(dialog, 'NOTIFY', (req) => {
      req.headers.add('event', event);
      req.headers.add('subscription-state', state);
      req.headers.add('content-type', 'message/sipfrag;version=2.0');
      req.body = Buffer.from(sipfrag(status));
    });
  };
  const run = async (): Promise<void> => {
    const trying = notify(100, 'active;expires=60');
    const out = await r.done;
    await trying;
    const status = out.ok ? 200 : failureStatus(out);
    deps.log.info({ callId: v.callId, call: ref.callId, referTo: target.uri, status, detail: out.ok ? undefined : out.detail }, 'REFER: the call onward is over');
    await notify(status, 'terminated;reason=noresource');
    if (out.ok) deps.endReferred();
  };
  run().catch((err: unknown) => deps.log.error({ err, callId: v.callId }, 'REFER handling failed'));
}
