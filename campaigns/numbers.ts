/**
 * A campaign's callees in one form, so that "each number called once" and the do-not-call check compare like with
 * like: every telephone number becomes E.164 before the campaign is written (`POST /v1/campaigns`, JSON or CSV)
 * and before a number is listed (`POST /v1/dnc`).
 *
 *   "+1 (555) 123-4567"  "+1.555.123.4567"  "tel:+1-555-123-4567"  "0015551234567"  ──► "+15551234567"
 *   "sip:alice@pbx.example.com"                                                    ──► as written (a SIP URI)
 *   "555-123-4567" (no country code), "+1 555 CALL-NOW", "+0…", more than 15 digits  ──► refused, with the reason
 *
 * `00` is read as the international prefix (as in most of the world); a national number has no country to assume,
 * so it is refused rather than guessed. A tel: URI with parameters (`;ext=`, `;phone-context=`) is refused: an
 * extension cannot be dialled through a provider's REST API.
 */

/** The E.164 form of a telephone number, a SIP URI unchanged, or why neither. */
export function normaliseCallee(raw: string): { number: string } | { error: string } {
  const s = raw.trim();
  if (/^sips?:/i.test(s)) return { number: s };
  let body = s;
  if (/^tel:/i.test(body)) {
    body = body.slice(4);
    const [num, ...params] = body.split(';');
    if (params.length > 0) return { error: `tel: parameters (;${params.join(';')}) cannot be dialled: give the number alone` };
    body = num ?? '';
  }
  const compact = body.replace(/[\s().\-/\u00a0]/g, '');
  if (compact === '') return { error: 'empty' };
  const international = compact.startsWith('+') ? compact.slice(1) : compact.startsWith('00') ? compact.slice(2) : null;
  if (international === null) {
    return /^\d+$/.test(compact) ? { error: 'no country code: write it as +<country code><number> (E.164), e.g. +15551234567' } : { error: 'not a telephone number (E.164: + and up to 15 digits) or a sip: URI' };
  }
  if (!/^\d+$/.test(international)) return { error: 'only digits may follow the + (and spaces, dashes, dots, brackets)' };
  if (international.startsWith('0')) return { error: 'a country code does not start with 0' };
  if (international.length < 3 || international.length > 15) return { error: `E.164 has 3 to 15 digits, this has ${international.length}` };
  return { number: `+${international}` };
}

export interface RowError {
  /** Where it was: `numbers[3]` in JSON, `line 5` in a CSV. */
  row: string;
  number: string;
  error: string;
}

/** Normalises every entry's `number`; the rows that cannot be are listed (nothing is dropped silently). */
export function normaliseCampaignNumbers<T extends { number: string }>(entries: readonly T[], where: (index: number) => string): { numbers: T[]; errors: RowError[] } {
  const numbers: T[] = [];
  const errors: RowError[] = [];
  entries.forEach((e, i) => {
    const r = normaliseCallee(e.number);
    if ('error' in r) errors.push({ row: where(i), number: e.number, error: r.error });
    else numbers.push({ ...e, number: r.number });
  });
  return { numbers, errors };
}
