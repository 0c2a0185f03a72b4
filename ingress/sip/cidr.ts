/**
 * Source allowlists: CIDR blocks (IPv4 and IPv6) matched with node's
 * `net.BlockList`. An IPv4-mapped IPv6 source (`::ffff:192.0.2.1`, what a
 * dual-stack socket reports) is matched as the IPv4 address it carries.
 */
import net from 'node:net';

export class CidrList {
  private readonly list = new net.BlockList();
  private constructor(readonly blocks: readonly string[]) {
    for (const b of blocks) {
      const { address, prefix, family } = parseCidr(b) as Cidr;
      this.list.addSubnet(address, prefix, family);
    }
  }

  /** Comma/space-separated CIDRs (a bare address is a /32 or /128); throws with the offending entry. */
  static parse(text: string): CidrList {
    const blocks = text.split(/[\s,]+/).filter((s) => s !== '');
    if (blocks.length === 0) throw new Error('no CIDR block given');
    for (const b of blocks) if (!parseCidr(b)) throw new Error(`not a CIDR block: "${b}" (expected e.g. 203.0.113.0/24 or 2001:db8::/32)`);
    return new CidrList(blocks);
  }

  has(address: string): boolean {
    const a = unmapped(address);
    const family = net.isIP(a);
    if (family === 0) return false;
    return this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}

interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

export function parseCidr(text: string): Cidr | null {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!m) return null;
  const address = unmapped(m[1] as string);
  const v = net.isIP(address);
  if (v === 0) return null;
  const max = v === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return null;
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/** `::ffff:a.b.c.d` → `a.b.c.d`; anything else unchanged. */
export function unmapped(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? (m[1] as string) : address;
}
