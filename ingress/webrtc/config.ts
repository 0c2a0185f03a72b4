/**
 * WebRTC settings, as cli/config/ builds them from SWITCHBOARD_WEBRTC_* (docs/reference.md lists the variables):
 * ICE servers for real deployments (STUN/TURN, also given to browsers by `GET /webrtc/config`), extra host
 * candidates (e.g. the public address of a 1:1 NAT; the gateway's own interfaces are always offered), a UDP port
 * range, the built-in `demo` number (on in development), the Opus encoder complexity for the agent's audio (5:
 * libopus's default 10 costs ~2× the CPU for wideband speech, ~310 vs ~160 µs per 20 ms frame here, with no audible
 * gain at 24 kb/s; at 10 the encoder alone took most of a core at 40 calls) and the resume grace.
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
  /** A call with no browser attached is ended after this long (ms). */
  resumeGraceMs: number;
}
