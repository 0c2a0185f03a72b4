/**
 * SIP header grammar (RFC 3261 §25): the ordered header list with compact
 * forms, comma-separated lists, parameters, name-addr / addr-spec, Via, CSeq
 * and SIP URIs. Parsers are strict where the RFC is (a malformed value is
 * `null`, which the UAS answers with 400) and tolerant where it allows LWS.
 */

/** RFC 3261 §7.3.3 and later RFCs' compact forms → the full (lower-case) name. */
const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id', m: 'contact', e: 'content-encoding', l: 'content-length', c: 'content-type', f: 'from',
  s: 'subject', k: 'supported', t: 'to', v: 'via', o: 'event', r: 'refer-to', b: 'referred-by',
  u: 'allow-events', x: 'session-expires', a: 'accept-contact', j: 'reject-contact', d: 'request-disposition', y: 'identity',
};
const PRETTY: Readonly<Record<string, string>> = { 'call-id': 'Call-ID', cseq: 'CSeq', 'www-authenticate': 'WWW-Authenticate', 'mime-version': 'MIME-Version', 'min-se': 'Min-SE', rseq: 'RSeq', rack: 'RAck' };

const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
export const isToken = (s: string): boolean => TOKEN_RE.test(s);

export function canonicalName(name: string): string {
  const lower = name.toLowerCase();
  // Own keys only: a header named `constructor` or `__proto__` must not find Object.prototype's members.
  return Object.hasOwn(COMPACT, lower) ? (COMPACT[lower] as string) : lower;
}

export function prettyName(lower: string): string {
  return Object.hasOwn(PRETTY, lower) ? (PRETTY[lower] as string) : lower.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/** The ordered header fields of a message; names are stored canonical (full, lower-case). */
export class Headers {
  readonly entries: Array<{ name: string; value: string }> = [];

  add(name: string, value: string): this {
    this.entries.push({ name: canonicalName(name), value });
    return this;
  }
  set(name: string, value: string): this {
    this.delete(name);
    return this.add(name, value);
  }
  delete(name: string): void {
    const n = canonicalName(name);
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i]?.name === n) this.entries.splice(i, 1);
  }
  get(name: string): string | undefined {
    const n = canonicalName(name);
    return this.entries.find((e) => e.name === n)?.value;
  }
  /** Every header line of that name, in order. */
  lines(name: string): string[] {
    const n = canonicalName(name);
    return this.entries.filter((e) => e.name === n).map((e) => e.value);
  }
  /** Every list element over every line (Via, Route, Require, …). */
  values(name: string): string[] {
    return this.lines(name).flatMap(splitList);
  }
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
  clone(): Headers {
    const h = new Headers();
    for (const e of this.entries) h.entries.push({ ...e });
    return h;
  }
}

/**
 * Splits at the given separator outside quoted strings and <…>. With
 * `keepEmpty`, empty elements are kept (the caller decides if they are errors).
 */
export function splitOutside(value: string, sep: string, keepEmpty = false): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angle = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (quoted) {
      cur += ch;
      if (ch === '\\' && i + 1 < value.length) cur += value[++i];
      else if (ch === '"') quoted = false;
      continue;
    }
    if (ch === '"') quoted = true;
    else if (ch === '<') angle++;
    else if (ch === '>' && angle > 0) angle--;
    if (ch === sep && angle === 0) {
      out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  out.push(cur.trim());
  return keepEmpty ? out : out.filter((s) => s !== '');
}

export const splitList = (value: string): string[] => splitOutside(value, ',');

export type Params = Record<string, string | null>;

/** `;a=b;c` (leading `;` optional) → params; null when a parameter is empty or not a token. */
export function parseParams(s: string): Params | null {
  const params: Params = {};
  const text = s.trim();
  if (text === '') return params;
  const parts = splitOutside(text.startsWith(';') ? text.slice(1) : text, ';', true);
  for (const part of parts) {
    if (part === '') return null;
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (!isToken(name)) return null;
    if (eq < 0) {
      params[name] = null;
      continue;
    }
    let v = part.slice(eq + 1).trim();
    if (v.startsWith('"')) {
      const q = readQuoted(v, 0);
      if (!q || q.end !== v.length) return null;
      v = q.text;
    } else if (!/^[A-Za-z0-9\-.!%*_+`'~:[\]]+$/.test(v)) return null;
    params[name] = v;
  }
  return params;
}

export const formatParams = (p: Params): string => Object.entries(p).map(([k, v]) => (v === null ? `;${k}` : `;${k}=${v}`)).join('');

/** Reads a quoted-string starting at `start` (a `"`); returns the unescaped text and the index after it. */
function readQuoted(s: string, start: number): { text: string; end: number } | null {
  let text = '';
  for (let i = start + 1; i < s.length; i++) {
    const ch = s[i] as string;
    if (ch === '\\') {
      if (i + 1 >= s.length) return null;
      text += s[++i];
    } else if (ch === '"') return { text, end: i + 1 };
    else text += ch;
  }
  return null;
}

/** Index of `ch` outside quoted strings; -1 if none (or a quote is unbalanced before it). */
function indexOutsideQuotes(s: string, ch: string): number {
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ch) return i;
  }
  return -1;
}

export interface NameAddr {
  display: string | null;
  uri: string;
  params: Params;
}

const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"]+$/;
const DISPLAY_TOKENS_RE = /^[A-Za-z0-9\-.!%*_+`'~]+(?:\s+[A-Za-z0-9\-.!%*_+`'~]+)*$/;

/** From / To / Contact / Route value: `["display"] <uri>;params` or `uri;params`; null if malformed. */
export function parseNameAddr(value: string): NameAddr | null {
  const v = value.trim();
  if (indexOutsideQuotes(v, '<') >= 0) {
    // There is a '<' outside quotes: name-addr.
    let i = 0;
    let display: string | null = null;
    if (v.startsWith('"')) {
      const q = readQuoted(v, 0);
      if (!q) return null;
      display = q.text;
      i = q.end;
      while (v[i] === ' ' || v[i] === '\t') i++;
      if (v[i] !== '<') return null;
    } else {
      i = v.indexOf('<');
      const d = v.slice(0, i).trim();
      if (d !== '' && !DISPLAY_TOKENS_RE.test(d)) return null;
      display = d === '' ? null : d;
    }
    const gt = v.indexOf('>', i);
    if (gt < 0) return null;
    const uri = v.slice(i + 1, gt).trim();
    if (!URI_RE.test(uri)) return null;
    const params = parseParams(v.slice(gt + 1));
    return params ? { display, uri, params } : null;
  }
  if (v.includes('"')) return null;
  const semi = v.indexOf(';');
  const uri = (semi < 0 ? v : v.slice(0, semi)).trim();
  if (!URI_RE.test(uri) || uri.includes('?') || uri.includes(',')) return null;
  const params = semi < 0 ? {} : parseParams(v.slice(semi));
  return params ? { display: null, uri, params } : null;
}

export function formatNameAddr(na: NameAddr): string {
  const display = na.display === null ? '' : `"${na.display.replace(/(["\\])/g, '\\$1')}" `;
  return `${display}<${na.uri}>${formatParams(na.params)}`;
}

export interface Via {
  protocol: string;
  transport: string;
  host: string;
  port: number | null;
  params: Params;
}

const isLws = (c: string | undefined): boolean => c === ' ' || c === '\t';

/**
 * One via-parm (RFC 3261 §20.42: `protocol-name SLASH protocol-version SLASH transport LWS sent-by *( SEMI
 * via-params )`, LWS allowed around the slashes); null if malformed. Read left to right by index — no pattern
 * that can backtrack (a regular expression here took seconds on a Via of long whitespace runs).
 */
export function parseVia(value: string): Via | null {
  const v = value.trim();
  let i = 0;
  const parts: string[] = [];
  for (let k = 0; k < 3; k++) {
    if (k > 0) {
      while (isLws(v[i])) i++;
      if (v[i] !== '/') return null;
      i++;
      while (isLws(v[i])) i++;
    }
    const from = i;
    while (i < v.length && v[i] !== '/' && !isLws(v[i]) && v[i] !== ';') i++;
    const token = v.slice(from, i);
    if (!isToken(token)) return null;
    parts.push(token);
  }
  if (!isLws(v[i])) return null;
  const semi = v.indexOf(';', i);
  const hp = parseHostPort((semi < 0 ? v.slice(i) : v.slice(i, semi)).trim());
  if (!hp) return null;
  const params = parseParams(semi < 0 ? '' : v.slice(semi));
  if (!params) return null;
  const [name, version, transport] = parts as [string, string, string];
  return { protocol: `${name}/${version}`.toUpperCase(), transport: transport.toUpperCase(), host: hp.host, port: hp.port, params };
}

export const formatVia = (v: Via): string => `${v.protocol}/${v.transport} ${v.port === null ? v.host : `${v.host}:${v.port}`}${formatParams(v.params)}`;

/** `host[:port]`, host a name, IPv4 or `[IPv6]`. */
export function parseHostPort(s: string): { host: string; port: number | null } | null {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?::\s*(\d{1,5}))?$/.exec(s);
  if (!m) return null;
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && port > 65535) return null;
  return { host: m[1] as string, port };
}

export interface CSeq {
  seq: number;
  method: string;
}

/** `CSeq: 1 INVITE`; the number must be below 2^31 (RFC 3261 §8.1.1.5). */
export function parseCSeq(value: string): CSeq | null {
  const m = /^(\d{1,10})\s+(\S+)$/.exec(value.trim());
  if (!m || !isToken(m[2] as string)) return null;
  const seq = Number(m[1]);
  return seq < 2 ** 31 ? { seq, method: m[2] as string } : null;
}

export interface SipUri {
  scheme: 'sip' | 'sips';
  /** The user part, %-unescaped once. */
  user: string | null;
  host: string;
  port: number | null;
  params: Params;
  headers: string | null;
}

/** sip:/sips: URI; null when it is not one or is malformed. */
export function parseSipUri(uri: string): SipUri | null {
  const m = /^(sips?):([^]*)$/i.exec(uri);
  if (!m) return null;
  let rest = m[2] as string;
  let headers: string | null = null;
  const q = rest.indexOf('?');
  if (q >= 0) {
    headers = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let user: string | null = null;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const raw = rest.slice(0, at);
    const colon = raw.indexOf(':');
    try {
      user = decodeURIComponent(colon >= 0 ? raw.slice(0, colon) : raw);
    } catch {
      return null;
    }
    rest = rest.slice(at + 1);
  }
  const semi = rest.indexOf(';');
  const hp = parseHostPort(semi < 0 ? rest : rest.slice(0, semi));
  if (!hp) return null;
  const params = semi < 0 ? {} : parseParams(rest.slice(semi));
  if (!params) return null;
  return { scheme: (m[1] as string).toLowerCase() as 'sip' | 'sips', user, host: hp.host, port: hp.port, params, headers };
}
