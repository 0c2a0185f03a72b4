/**
 * The tenant's do-not-call list (table `dnc_numbers`, schema/campaign-tables.ts). A number is matched by its key
 * (`dncKey`): an E.164 number as written, a SIP URI by its user part (`sip:+15550100@pbx` → `+15550100`), so a
 * listed number is never dialled whichever way a campaign names it. Campaigns check the list inside the dial
 * decision's own command (schema/campaigns.ts `campaign_attempt_decided`), so a number added a moment before its
 * turn is not dialled.
 *
 *   dnc_added    adds a number (again: updates the reason); needs dnc:write
 *   dnc_removed  removes it; a number not listed fails with dnc_not_found
 */
import { z } from 'zod';
import { requireCaller } from './access.ts';
import { defineReducer, type Ctx } from './reducer.ts';

const Number_ = z.string().trim().min(2).max(512);

/** The key a number is listed and matched under: a SIP URI's user part, else the number without spaces. */
export function dncKey(number: string): string {
  const m = /^sips?:([^@;]+)@/i.exec(number.trim());
  const raw = m ? decodeURIComponentSafe(m[1]!) : number.trim();
  return raw.replace(/[\s().-]/g, '');
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Whether `number` is on the tenant's do-not-call list. */
export function onDnc(ctx: Ctx, number: string): boolean {
  return ctx.db.dnc_numbers.findOne({ tenant: ctx.tenant, number: dncKey(number) }) !== undefined;
}

export const dnc_added = defineReducer('dnc_added', z.strictObject({ number: Number_, reason: z.string().max(1000).nullable().default(null) }), (ctx, a) => {
  requireCaller(ctx, 'dnc:write');
  const key = dncKey(a.number);
  const existing = ctx.db.dnc_numbers.findOne({ tenant: ctx.tenant, number: key });
  if (existing) {
    ctx.db.dnc_numbers.update(existing.id, { reason: a.reason ?? existing.reason });
    return { id: existing.id, number: key, existing: true };
  }
  const id = ctx.newId('dnc');
  ctx.db.dnc_numbers.insert({ id, tenant: ctx.tenant, number: key, reason: a.reason, added_by: ctx.caller, added_at: ctx.now });
  return { id, number: key, existing: false };
});

export const dnc_removed = defineReducer('dnc_removed', z.strictObject({ number: Number_ }), (ctx, a) => {
  requireCaller(ctx, 'dnc:write');
  const key = dncKey(a.number);
  const existing = ctx.db.dnc_numbers.findOne({ tenant: ctx.tenant, number: key });
  if (!existing) return ctx.fail('dnc_not_found', `${key} is not on the do-not-call list`);
  ctx.db.dnc_numbers.delete(existing.id);
  return { number: key };
});

export const dncReducers = [dnc_added, dnc_removed];
