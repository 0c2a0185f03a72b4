/**
 * PII redaction of transcript text, before it is stored (bridge/content-manager.ts) or handed to an agent turn
 * when the policy says the agent sees the redacted text (schema/pci-tables.ts `redaction_policies`).
 *
 *   text ─► each enabled Redactor.find(text) ─► spans (kind, start, end) ─► overlaps resolved (earlier registered
 *        wins, then the longer span) ─► each span replaced by `[redacted:<kind>]` ─► { text, counts per kind }
 *
 * Built-in recognisers (in registration order, so a Luhn-valid card is never also called a phone number):
 *   card   13–19 digits, Luhn-checked, written ("4111 1111-1111 1111") or spoken ("four one one one …", "oh" = 0)
 *   ssn    US social security numbers: 123-45-6789, or nine digits whose area/group/serial are valid
 *   iban   two letters, two check digits, 11–30 alphanumerics, mod-97 checked (spaces allowed)
 *   email  local@domain.tld
 *   phone  10–15 digits (a leading + allowed), written or spoken, that are no card
 *
 * A better recogniser (a named-entity model, a country's id format) implements `Redactor` and is registered with
 * `registerRedactor()` by whoever starts the gateway; core never imports one. Its `kind` is what a policy names.
 */

export interface RedactionSpan {
  start: number;
  end: number;
}

export interface Redactor {
  /** The name a policy enables it by (lowercase). */
  readonly kind: string;
  /** Where in `text` the values it recognises are (character offsets, end exclusive). */
  find(text: string): RedactionSpan[];
}

export interface RedactionResult {
  text: string;
  /** Kind → how many values were replaced. Empty when nothing was. */
  counts: Record<string, number>;
}

const WORD_DIGITS: Readonly<Record<string, string>> = {
  zero: '0', oh: '0', o: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9',
};

/** A run of digits in the text, written or spoken, with the span it covers. */
interface DigitRun {
  digits: string;
  start: number;
  end: number;
  /** Offsets in the text where each token (a digit group or a digit word) begins and ends. */
  tokens: Array<{ start: number; end: number; digits: string }>;
  plus: boolean;
}

const TOKEN = /\+?[0-9]+|[a-z]+/gi;
/** What may stand between two tokens of one run: spaces, dashes, dots, commas, brackets. */
const JOINER = /^[\s\-.,()/]*$/;

/** Runs of digit tokens (groups of digits, or number words), split where other words or punctuation come between. */
export function digitRuns(text: string): DigitRun[] {
  const runs: DigitRun[] = [];
  let cur: DigitRun | null = null;
  for (const m of text.matchAll(TOKEN)) {
    const raw = m[0];
    const start = m.index;
    const end = start + raw.length;
    const digits = /^\+?[0-9]+$/.test(raw) ? raw.replace('+', '') : WORD_DIGITS[raw.toLowerCase()];
    if (digits === undefined || (raw.toLowerCase() === 'o' && !cur)) {
      if (cur) runs.push(cur);
      cur = null;
      continue;
    }
    if (cur && JOINER.test(text.slice(cur.end, start))) {
      cur.digits += digits;
      cur.end = end;
      cur.tokens.push({ start, end, digits });
    } else {
      if (cur) runs.push(cur);
      cur = { digits, start, end, tokens: [{ start, end, digits }], plus: raw.startsWith('+') };
    }
  }
  if (cur) runs.push(cur);
  return runs;
}

export function luhnValid(digits: string): boolean {
  if (!/^[0-9]{13,19}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Within a run, the longest stretch of whole tokens whose digits are a Luhn-valid card number. */
function cardIn(run: DigitRun): RedactionSpan | null {
  const t = run.tokens;
  let best: { span: RedactionSpan; len: number } | null = null;
  for (let i = 0; i < t.length; i++) {
    let digits = '';
    for (let j = i; j < t.length; j++) {
      digits += t[j]!.digits;
      if (digits.length > 19) break;
      if (digits.length >= 13 && luhnValid(digits) && (!best || digits.length > best.len)) best = { span: { start: t[i]!.start, end: t[j]!.end }, len: digits.length };
    }
  }
  return best?.span ?? null;
}

export const cardRedactor: Redactor = {
  kind: 'card',
  find: (text) => digitRuns(text).flatMap((r) => cardIn(r) ?? []),
};

function ssnValid(d: string): boolean {
  if (!/^[0-9]{9}$/.test(d)) return false;
  const area = Number(d.slice(0, 3));
  return area !== 0 && area !== 666 && area < 900 && d.slice(3, 5) !== '00' && d.slice(5) !== '0000';
}

export const ssnRedactor: Redactor = {
  kind: 'ssn',
  find: (text) => digitRuns(text).filter((r) => r.digits.length === 9 && !r.plus && ssnValid(r.digits)),
};

function ibanValid(compact: string): boolean {
  if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(compact)) return false;
  const moved = compact.slice(4) + compact.slice(0, 4);
  let rem = 0;
  for (const ch of moved) {
    const v = ch >= 'A' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const c of v) rem = (rem * 10 + (c.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1;
}

const IBAN = /\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/g;

export const ibanRedactor: Redactor = {
  kind: 'iban',
  find: (text) => [...text.matchAll(IBAN)].filter((m) => ibanValid(m[0].replace(/ /g, '').toUpperCase())).map((m) => ({ start: m.index, end: m.index + m[0].length })),
};

const EMAIL = /[A-Z0-9._%+-]+@[A-Z0-9-]+(?:\.[A-Z0-9-]+)*\.[A-Z]{2,}/gi;

export const emailRedactor: Redactor = {
  kind: 'email',
  find: (text) => [...text.matchAll(EMAIL)].map((m) => ({ start: m.index, end: m.index + m[0].length })),
};

export const phoneRedactor: Redactor = {
  kind: 'phone',
  find: (text) =>
    digitRuns(text)
      .filter((r) => r.digits.length >= 10 && r.digits.length <= 15)
      .map((r) => ({ start: r.start, end: r.end })),
};

const registry = new Map<string, Redactor>();
for (const r of [cardRedactor, ssnRedactor, ibanRedactor, emailRedactor, phoneRedactor]) registry.set(r.kind, r);

/** Adds (or replaces) a recogniser; a policy enables it by its `kind`. Registered later = lower precedence. */
export function registerRedactor(redactor: Redactor): void {
  if (!/^[a-z][a-z0-9_-]{0,39}$/.test(redactor.kind)) throw new TypeError(`redactor kind ${redactor.kind} must be lowercase letters, digits, - and _`);
  registry.set(redactor.kind, redactor);
}

/** The kinds a policy may name now (the built-ins and what was registered). */
export function redactorKinds(): string[] {
  return [...registry.keys()];
}

/** Every registered kind: what a PCI pause masks in what it cannot keep out (an agent's read-back). */
export function allKinds(): string[] {
  return redactorKinds();
}

/** Replaces what the enabled recognisers find with `[redacted:<kind>]`; unknown kinds are ignored. */
export function redact(text: string, kinds: readonly string[]): RedactionResult {
  const found: Array<RedactionSpan & { kind: string; rank: number }> = [];
  let rank = 0;
  for (const [kind, r] of registry) {
    rank++;
    if (!kinds.includes(kind)) continue;
    for (const s of r.find(text)) if (s.end > s.start) found.push({ ...s, kind, rank });
  }
  if (found.length === 0) return { text, counts: {} };
  // Precedence: earlier registered, then longer; a span overlapping a kept one is dropped.
  found.sort((a, b) => a.rank - b.rank || b.end - b.start - (a.end - a.start));
  const kept: typeof found = [];
  for (const s of found) if (!kept.some((k) => s.start < k.end && k.start < s.end)) kept.push(s);
  kept.sort((a, b) => a.start - b.start);
  const counts: Record<string, number> = {};
  let out = '';
  let at = 0;
  for (const s of kept) {
    out += `${text.slice(at, s.start)}[redacted:${s.kind}]`;
    at = s.end;
    counts[s.kind] = (counts[s.kind] ?? 0) + 1;
  }
  return { text: out + text.slice(at), counts };
}
