/** Times at the API edge: ISO-8601 out; ISO-8601 or ms since epoch in. */
import { z } from 'zod';

export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

/** A query-string time: `2026-11-22T10:00:00Z` or `1795000000000`. */
export const TimeParam = z.string().transform((s, ctx) => {
  const ms = /^\d{1,16}$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: `not a time: ${JSON.stringify(s.slice(0, 40))} (use ISO-8601 or ms since epoch)` });
    return z.NEVER;
  }
  return ms;
});
