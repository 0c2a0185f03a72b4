/**
 * Outbound SIP settings (agent-initiated calls, uac.ts), from the JSON file
 * named by SWITCHBOARD_SIP_OUTBOUND (read by cli/config/ at start), validated at start (an invalid file stops
 * the start with a message naming the variable and the bad field):
 *
 *   {
 *     "pbx.example.com": { "username": "agent", "password": "s3cret" },
 *     "example.net":     { "username": "u", "password": "p", "proxy": "10.0.0.5:5060", "from_domain": "example.net" },
 *     "carrier.example": { "transport": "tls", "encryption": "require" },
 *     "*":               { "username": "fallback", "password": "…" }
 *   }
 *
 * A key matches the target URI's host exactly, or any host under it (`example.net` matches
 * `sip.example.net`); the longest match wins, `*` matches anything. `proxy` (`host[:port]`, optionally
 * `;transport=tcp`) is where the INVITE is sent instead of the target's host (an outbound proxy: the
 * Request-URI stays the target); `from_domain` is the host part of our From URI (default: our own address).
 * The credentials answer a 401/407 challenge once (a route may have none: `username`/`password` are optional
 * together). `transport` (`udp` | `tcp` | `tls`) is how the INVITE travels (default: the target URI's
 * `;transport=`, TLS for a `sips:` target, else UDP; TLS goes to port 5061 unless one is given). `encryption` is the
 * route's policy (encryption-policy.ts: `require` | `prefer` | `allow`, or TLS/SRTP levels): TLS `require` or
 * `prefer` sends the INVITE over TLS (`require` with a `udp`/`tcp` transport is refused at start); the SRTP half is
 * the media's (uac.ts: `require` offers RTP/SAVP + a=crypto and hangs up a plain answer, `prefer` offers a=crypto
 * in RTP/AVP, `allow` plain RTP). Unset = calls go straight to the target, unauthenticated.
 * Passwords are never logged: `describe()` names users and hosts only.
 */
import { z } from 'zod';
import { ALLOW_ALL, EncryptionPolicyError, parseLevels, type EncryptionPolicy } from './encryption-policy.ts';
import { parseHostPort } from './headers.ts';

export class OutboundConfigError extends Error {
  override readonly name = 'OutboundConfigError';
}

const HOST_KEY = /^(\*|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$/;
const proxy = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(;transport=(udp|tcp|tls))?$/i, 'host[:port][;transport=udp|tcp|tls]');

const Entry = z
  .strictObject({
    username: z.string().min(1).max(128).regex(/^[^\s"\\]+$/, 'no spaces, quotes or backslashes').optional(),
    password: z.string().min(1).max(256).optional(),
    proxy: proxy.optional(),
    from_domain: z.string().regex(/^[A-Za-z0-9.-]+$/, 'a domain name').optional(),
    transport: z.enum(['udp', 'tcp', 'tls']).optional(),
    encryption: z.string().max(32).optional(),
  })
  .refine((e) => (e.username === undefined) === (e.password === undefined), { message: 'username and password go together', path: ['password'] });
const File = z.record(z.string(), Entry, { error: 'must be an object of host → { username?, password?, proxy?, from_domain?, transport?, encryption? }' });

export interface OutboundRoute {
  /** The key that matched. */
  match: string;
  /** Digest credentials; null = the route answers no challenge. */
  username: string | null;
  password: string | null;
  proxy: { host: string; port: number | null; transport: 'udp' | 'tcp' | 'tls' | null } | null;
  fromDomain: string | null;
  /** How the INVITE travels (null: from the target URI). */
  transport: 'udp' | 'tcp' | 'tls' | null;
  /** The route's TLS/SRTP policy (default allow/allow). */
  encryption: EncryptionPolicy;
}

/**
 * The first hop of an outbound INVITE: the route's proxy, else the target's host; its transport is the route's
 * `transport`, else the proxy's `;transport=`, else the target's (`sips:` = TLS, `;transport=`), else TLS when the
 * route's policy requires or prefers it, else UDP. TLS defaults to port 5061, the others to 5060.
 */
export function outboundHop(uri: { scheme: 'sip' | 'sips'; host: string; port: number | null; params: Record<string, string | null> }, route: OutboundRoute | null): { host: string; port: number | null; transport: 'udp' | 'tcp' | 'tls' } {
  const param = uri.params.transport?.toLowerCase();
  const fromUri = uri.scheme === 'sips' || param === 'tls' ? 'tls' : param === 'tcp' ? 'tcp' : param === 'udp' ? 'udp' : null;
  const fromPolicy = route && route.encryption.tls !== 'allow' ? 'tls' : null;
  const transport = route?.transport ?? route?.proxy?.transport ?? fromUri ?? fromPolicy ?? 'udp';
  if (route?.proxy) return { host: route.proxy.host, port: route.proxy.port, transport };
  return { host: uri.host.replace(/^\[|\]$/g, ''), port: uri.port, transport };
}

export class OutboundConfig {
  constructor(private readonly entries: ReadonlyMap<string, OutboundRoute>) {}

  static empty(): OutboundConfig {
    return new OutboundConfig(new Map());
  }

  /** Parses the file's JSON (already read); throws OutboundConfigError naming the field. */
  static parse(json: unknown, source = 'SWITCHBOARD_SIP_OUTBOUND'): OutboundConfig {
    const parsed = File.safeParse(json);
    if (!parsed.success) throw new OutboundConfigError(`${source}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`);
    const entries = new Map<string, OutboundRoute>();
    for (const [key, e] of Object.entries(parsed.data)) {
      if (!HOST_KEY.test(key)) throw new OutboundConfigError(`${source}: "${key}": a key is a host name, an IP address or *`);
      let p: OutboundRoute['proxy'] = null;
      if (e.proxy) {
        const [hp = '', ...params] = e.proxy.split(';');
        const parts = parseHostPort(hp);
        if (!parts) throw new OutboundConfigError(`${source}: ${key}.proxy: "${e.proxy}" is not host[:port]`);
        const t = params.find((x) => /^transport=/i.test(x))?.slice('transport='.length).toLowerCase();
        p = { host: parts.host.replace(/^\[|\]$/g, ''), port: parts.port, transport: t === 'tcp' || t === 'udp' || t === 'tls' ? t : null };
      }
      let encryption = ALLOW_ALL;
      try {
        if (e.encryption !== undefined) encryption = parseLevels(e.encryption, `${source}: ${key}.encryption`);
      } catch (err) {
        if (err instanceof EncryptionPolicyError) throw new OutboundConfigError(err.message);
        throw err;
      }
      const transport = e.transport ?? null;
      const fixed = transport ?? p?.transport ?? null;
      if (encryption.tls === 'require' && fixed !== null && fixed !== 'tls') throw new OutboundConfigError(`${source}: ${key}: encryption requires TLS but the route's transport is ${fixed}`);
      entries.set(key.toLowerCase(), { match: key, username: e.username ?? null, password: e.password ?? null, proxy: p, fromDomain: e.from_domain ?? null, transport, encryption });
    }
    return new OutboundConfig(entries);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The route for a target host: exact, else the longest parent domain, else `*`; null = none. */
  routeFor(host: string): OutboundRoute | null {
    const h = host.toLowerCase().replace(/^\[|\]$/g, '');
    const exact = this.entries.get(h) ?? this.entries.get(`[${h}]`);
    if (exact) return exact;
    const labels = h.split('.');
    for (let i = 1; i < labels.length; i++) {
      const e = this.entries.get(labels.slice(i).join('.'));
      if (e) return e;
    }
    return this.entries.get('*') ?? null;
  }

  /** For the start-up log: hosts and users, never passwords. */
  describe(): string {
    return [...this.entries.values()].map((e) => `${e.match}→${e.username ?? '(no auth)'}${e.proxy ? ` via ${e.proxy.host}` : ''}${e.transport ? ` ${e.transport}` : ''}`).join(', ') || 'none';
  }
}
