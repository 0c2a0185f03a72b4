/**
 * SIP REFER (RFC 3515, RFC 4488), both ways, per trunk and route (SWITCHBOARD_SIP_REFER, route-rules.ts):
 *
 *   SWITCHBOARD_SIP_REFER = SETTINGS                      every SIP call (the same as `*=SETTINGS`)
 *                         | KEY=SETTINGS, …               per route (a number or SIP URI), per trunk (a CIDR) or `*`;
 *                                                         the most specific match wins (route > trunk > `*`)
 *   SETTINGS = transfer | accept | transfer/accept | none
 *
 * `transfer` — a blind transfer by the agent (`ctx.transfer(target)`) asks the far end (the carrier) to transfer:
 *
 *   REFER (Refer-To: <target>; an E.164 number as tel:) ─► 202 ─► NOTIFY sipfrag `SIP/2.0 100 Trying` … (each answered 200)
 *        ─► NOTIFY sipfrag 2xx ─► the call ends `sip:transferred` (BYE)      — the transfer action succeeds
 *        ─► NOTIFY sipfrag ≥ 300, REFER answered ≥ 300 or not at all,
 *           a terminated subscription without a final sipfrag             — the action fails with the reason;
 *                                                                           the caller stays with the agent
 *
 * Without `transfer` a blind transfer on a SIP call is dialled and bridged by the gateway (bridge/transfer-dial.ts).
 *
 * `accept` — a REFER from the far end is acted on (refer-accept.ts): a person bridged into a call by a transfer (a
 * human on a PBX) hands the call onward; the caller ends up bridged to the Refer-To target and the referring dialog
 * ends `sip:referred`. Elsewhere, and on routes without `accept`, a REFER from the far end is answered
 * `403 Forbidden (<why>)` with a `Warning`, and the call goes on. A REFER or NOTIFY outside a live dialog gets 481.
 */
import type { Logger } from 'pino';
import type { Dialog } from './dialog.ts';
import { parseSipUri } from './headers.ts';
import type { SipRequest } from './message.ts';
import { RouteRuleError, RouteRules, type InboundKey } from './route-rules.ts';
import type { NonInviteServerTransaction } from './transaction.ts';
import type { ValidRequest } from './validate.ts';

const VARIABLE = 'SWITCHBOARD_SIP_REFER';

export interface ReferSettings {
  /** Blind transfers go out as REFER. */
  transfer: boolean;
  /** A REFER from the far end is acted on (refer-accept.ts). */
  accept: boolean;
}

const NONE: ReferSettings = { transfer: false, accept: false };

/** Which SIP calls make blind transfers by REFER, and which accept one (SWITCHBOARD_SIP_REFER). */
export class ReferRoutes {
  private constructor(private readonly rules: RouteRules<ReferSettings>) {}

  static none(): ReferRoutes {
    return new ReferRoutes(RouteRules.empty());
  }

  /** Parses the variable; an unknown word throws naming the variable. */
  static parse(text: string | undefined): ReferRoutes {
    const value = (v: string, where: string): ReferSettings => {
      const words = v.trim().toLowerCase().split('/').map((w) => w.trim());
      if (words.length === 1 && words[0] === 'none') return NONE;
      if (words.some((w) => w !== 'transfer' && w !== 'accept')) throw new RouteRuleError(`${where}: "${v.trim()}" is not transfer, accept, transfer/accept or none`);
      return { transfer: words.includes('transfer'), accept: words.includes('accept') };
    };
    try {
      return new ReferRoutes(RouteRules.parse(text, VARIABLE, value));
    } catch (err) {
      if (err instanceof RouteRuleError) throw new Error(err.message.replace('KEY=VALUE', 'KEY=SETTINGS'));
      throw err;
    }
  }

  /** The settings of a call, by its trunk (signalling source) and route (the number it was made to or from). */
  forCall(call: InboundKey): ReferSettings {
    return this.rules.mostSpecific(call) ?? NONE;
  }
}

/** The route key of a live dialog: its peer's address and the number of our side (the To of an inbound INVITE). */
export function referKey(dialog: Dialog): InboundKey {
  const source = dialog.snap.peer.address.replace(/^::ffff:/i, '');
  const uri = /<([^>]*)>/.exec(dialog.snap.localUri)?.[1] ?? dialog.snap.localUri;
  const user = parseSipUri(uri)?.user ?? (/^tel:/i.test(uri) ? (uri.slice(4).split(';')[0] ?? '') : '');
  return { source, number: /^\d+$/.test(user) ? `+${user}` : user };
}

/** The status code of a `message/sipfrag` body (`SIP/2.0 200 OK`), null when it has none. */
export function sipfragStatus(body: string): number | null {
  const m = /^\s*SIP\/2\.0\s+(\d{3})\b/i.exec(body);
  return m ? Number(m[1]) : null;
}

/** The Refer-To URI of a transfer target: a URI as given, an E.164 number (or digits) as `tel:` (RFC 3966). */
export function referTo(target: string): string {
  const t = target.replace(/[<>\s]/g, '');
  return /^\+?\d+$/.test(t) ? `tel:${t}` : t;
}

export class ReferFailed extends Error {
  override readonly name = 'ReferFailed';
}

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface ReferDeps {
  log: Logger;
  /** Sends an in-dialog request, resolves its final status (null: no answer). */
  send: (dialog: Dialog, build: (req: SipRequest) => void) => Promise<number | null>;
  respond: (tx: NonInviteServerTransaction, status: number, opts?: { reason?: string; headers?: Array<[string, string]> }) => void;
  /** How long after the 202 a final NOTIFY may take before the transfer counts as failed (ms). */
  notifyTimeoutMs?: number;
}

/** The REFERs in flight (one per dialog) and the answers to REFER and NOTIFY in live dialogs. */
export class SipRefers {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly deps: ReferDeps) {}

  /** Blind transfer by REFER: resolves on a 2xx sipfrag, rejects (`ReferFailed`) with the reason otherwise. */
  async transfer(dialog: Dialog, target: string, referredBy: string): Promise<void> {
    if (this.pending.has(dialog.id)) throw new ReferFailed('a transfer is already in progress on this call');
    const done = new Promise<void>((resolve, reject) => this.pending.set(dialog.id, { resolve, reject }));
    done.catch(() => undefined); // settled while the REFER is still out: awaited below
    const timer = setTimeout(() => this.settle(dialog.id, new ReferFailed('no final NOTIFY came')), this.deps.notifyTimeoutMs ?? 64_000);
    try {
      const status = await this.deps.send(dialog, (req) => {
        req.headers.add('refer-to', `<${referTo(target)}>`);
        req.headers.add('referred-by', referredBy);
      });
      this.deps.log.info({ callId: dialog.snap.callId, target, status }, 'REFER answered');
      if (status === null) this.settle(dialog.id, new ReferFailed('REFER was not answered'));
      else if (status >= 300) this.settle(dialog.id, new ReferFailed(`REFER answered ${status}`));
      await done;
    } finally {
      clearTimeout(timer);
      this.pending.delete(dialog.id);
    }
  }

  /** NOTIFY in a live dialog (RFC 3515 §2.4.4): 200, then its sipfrag settles the transfer in flight. */
  notify(tx: NonInviteServerTransaction, v: ValidRequest, dialog: Dialog): void {
    const event = (v.req.headers.get('event') ?? '').split(';')[0]?.trim().toLowerCase();
    if (event !== 'refer') return void this.deps.respond(tx, 489, { reason: 'Bad Event' });
    this.deps.respond(tx, 200);
    const status = sipfragStatus(v.req.body.toString('utf8'));
    const state = (v.req.headers.get('subscription-state') ?? '').split(';')[0]?.trim().toLowerCase();
    this.deps.log.info({ callId: v.callId, sipfrag: status, state }, 'REFER progress');
    if (status !== null && status >= 200 && status < 300) this.settle(dialog.id, null);
    else if (status !== null && status >= 300) this.settle(dialog.id, new ReferFailed(`the transfer failed: ${status}`));
    else if (state === 'terminated') this.settle(dialog.id, new ReferFailed('the transfer subscription ended without a final answer'));
  }

  /** REFER from the far end: refused with `why`, the call goes on. */
  refer(tx: NonInviteServerTransaction, v: ValidRequest, host: string, why = 'REFER is not accepted on this route'): void {
    this.deps.log.info({ callId: v.callId, referTo: v.req.headers.get('refer-to') }, `REFER refused: ${why}`);
    this.deps.respond(tx, 403, { reason: `Forbidden (${why})`, headers: [['Warning', `399 ${host} "${why}"`]] });
  }

  /** A call ended with a REFER in flight: the transfer fails. */
  forget(dialog: Dialog): void {
    this.settle(dialog.id, new ReferFailed('the call ended during the transfer'));
  }

  private settle(id: string, err: Error | null): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (err) p.reject(err);
    else p.resolve();
  }
}
