/**
 * Outbound SIP settings (agent-initiated calls, uac.ts), from the JSON file
 * named by SWITCHBOARD_SIP_OUTBOUND (read by cli/config/ at start), validated at start (an invalid file stops
 * the start with a message naming the variable and the bad field):
 *
 *   {
 *     "pbx.example.com": { "username": "agent", "password": "s3cret" },
 *     "example.net":     { "username": "u", "password": "p", "proxy": "10.0.0.5:5060", "from_domain": "example.net" },
 *     "*":               { "username": "fallback", "password": "…" }
 *   }
 *
 * A key matches the target URI's host exactly, or any host under it (`example.net` matches
 * `sip.example.net`); the longest match wins, `*` matches anything. `proxy` (`host[:port]`, optionally
 * `;transport=tcp`) is where the INVITE is sent instead of the target's host (an outbound proxy: the
 * Request-URI stays the target); `from_domain` is the host part of our From URI (default: our own address);
 * `srtp` (`require` | `prefer` | `allow`) asks for SDES-SRTP media on calls to that host (default SWITCHBOARD_SIP_SRTP).
 * The credentials answer a 401/407 challenge once. Unset = calls go straight to the target, unauthenticated.
 * Passwords are never logged: `describe()` names users and hosts only.
 */
import { z } from 'zod';
import { parseHostPort } from './headers.ts';

export class OutboundConfigError extends Error {
  override readonly name = 'OutboundConfigError';
}

const HOST_KEY = /^(\*|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])$/;
const proxy = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?(;transport=(udp|tcp))?$/i, 'host[:port][;transport=udp|tcp]');

const Entry = z.strictObject({
  username: z.string().min(1).max(128).regex(/^[^\s"\\]+$/, 'no spaces, quotes or backslashes'),
  password: z.string().min(1).max(256),
  proxy: proxy.optional(),
  from_domain: z.string().regex(/^[A-Za-z0-9.-]+$/, 'a domain name').optional(),
  srtp: z.enum(['require', 'prefer', 'allow']).optional(),
});
const File = z.record(z.string(), Entry, { error: 'must be an object of host → { username, password, proxy?, from_domain? }' });

export interface OutboundRoute {
  /** The key that matched. */
  match: string;
  username: string;
  password: string;
  proxy: { host: string; port: number | null; transport: 'udp' | 'tcp' | null } | null;
  fromDomain: string | null;
  /** SDES-SRTP for calls on this route: `require` offers RTP/SAVP, `prefer` a=crypto in RTP/AVP; null = SWITCHBOARD_SIP_SRTP. */
  srtp: 'require' | 'prefer' | 'allow' | null;
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
        p = { host: parts.host.replace(/^\[|\]$/g, ''), port: parts.port, transport: t === 'tcp' ? 'tcp' : t === 'udp' ? 'udp' : null };
      }
      entries.set(key.toLowerCase(), { match: key, username: e.username, password: e.password, proxy: p, fromDomain: e.from_domain ?? null, srtp: e.srtp ?? null });
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
    return [...this.entries.values()].map((e) => `${e.match}→${e.username}${e.proxy ? ` via ${e.proxy.host}` : ''}`).join(', ') || 'none';
  }
}
