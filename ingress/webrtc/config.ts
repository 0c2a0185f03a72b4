/**
 * WebRTC settings from the environment.
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `SWITCHBOARD_WEBRTC_ICE_SERVERS` | (none) | STUN/TURN for real deployments: comma-separated `stun:`/`turn:` URLs, or JSON `[{"urls":…,"username":…,"credential":…}]`. Given to browsers by `GET /webrtc/config` too. |
 * | `SWITCHBOARD_WEBRTC_HOST_ADDRESSES` | `127.0.0.1` | extra host candidates (e.g. the public address of a 1:1 NAT); the gateway's own interfaces are always offered |
 * | `SWITCHBOARD_WEBRTC_PORTS` | ephemeral | UDP port range for ICE, `MIN-MAX` |
 * | `SWITCHBOARD_WEBRTC_DEMO` | `on` in development, else `off` | `off`: no built-in `demo` number at first start |
 * | `SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY` | `5` | Opus encoder complexity 0–10 for the agent's audio. libopus defaults to 10, which costs ~2× the CPU of 5 for wideband speech (~310 vs ~160 µs per 20 ms frame here) with no audible gain at 24 kb/s; at 10 the encoder alone took most of a core at 40 calls |
 *
 * With no ICE servers the gateway is ICE-lite: it gathers host candidates only
 * (no query to any public STUN server — werift would otherwise fall back to
 * Google's) and answers the browser's checks. With ICE servers it runs full ICE
 * through them.
 *
 * The default offers 127.0.0.1 beside the machine's own addresses, so one
 * browser may see two usable pairs (a browser on the same host reaches both);
 * it nominates one, then may nominate the other, and the gateway's media
 * follows its latest nomination (nomination.ts) — offering several addresses
 * is safe.
 */
import { z } from 'zod';

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface WebrtcConfig {
  iceServers: IceServer[];
  hostAddresses: string[];
  portRange: [number, number] | undefined;
  demo: boolean;
  /** Opus encoder complexity (0–10). */
  opusComplexity: number;
}

const IceUrl = z.string().regex(/^(stun|stuns|turn|turns):[^\s,]{1,250}$/, 'ICE server URLs start with stun:, stuns:, turn: or turns:');
const IceServers = z.array(z.object({ urls: z.union([IceUrl, z.array(IceUrl).min(1).max(8)]), username: z.string().max(256).optional(), credential: z.string().max(256).optional() })).max(8);

export function webrtcConfig(env: NodeJS.ProcessEnv): WebrtcConfig {
  const raw = (env.SWITCHBOARD_WEBRTC_ICE_SERVERS ?? '').trim();
  let servers: unknown = [];
  if (raw.startsWith('[')) {
    try {
      servers = JSON.parse(raw);
    } catch (err) {
      throw new Error(`SWITCHBOARD_WEBRTC_ICE_SERVERS: not valid JSON (${(err as Error).message})`);
    }
  } else if (raw !== '') {
    servers = raw.split(',').map((u) => ({ urls: u.trim() }));
  }
  const parsed = IceServers.safeParse(servers);
  if (!parsed.success) throw new Error(`SWITCHBOARD_WEBRTC_ICE_SERVERS: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  const hosts = (env.SWITCHBOARD_WEBRTC_HOST_ADDRESSES ?? '127.0.0.1').split(',').map((h) => h.trim()).filter((h) => h !== '');
  for (const h of hosts) if (!/^[0-9a-fA-F.:]{2,45}$/.test(h)) throw new Error(`SWITCHBOARD_WEBRTC_HOST_ADDRESSES: ${h} is not an IP address`);
  let portRange: [number, number] | undefined;
  const ports = env.SWITCHBOARD_WEBRTC_PORTS?.trim();
  if (ports) {
    const m = /^(\d{1,5})-(\d{1,5})$/.exec(ports);
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2]);
    if (!m || lo < 1024 || hi > 65535 || lo >= hi) throw new Error('SWITCHBOARD_WEBRTC_PORTS: expected MIN-MAX with 1024 <= MIN < MAX <= 65535');
    portRange = [lo, hi];
  }
  // The demo number is for trying the product: on by default in development only (a production gateway
  // publishes no anonymous number unless an operator asks for it).
  const demoDefault = (env.SWITCHBOARD_PROFILE ?? 'development') === 'development' ? 'on' : 'off';
  const demo = !/^(off|0|false|no)$/i.test(env.SWITCHBOARD_WEBRTC_DEMO ?? demoDefault);
  const cx = (env.SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY ?? '5').trim();
  if (!/^(10|[0-9])$/.test(cx)) throw new Error(`SWITCHBOARD_WEBRTC_OPUS_COMPLEXITY: "${cx}" must be an integer from 0 to 10`);
  return { iceServers: parsed.data, hostAddresses: hosts, portRange, demo, opusComplexity: Number(cx) };
}
