/**
 * The provider-neutral face of an ingress adapter's test peer, so one set of
 * end-to-end cases (suite.ts) runs against every adapter, as hono's shared
 * suites run one set of tests against every runtime.
 *
 * A driver knows how its provider places a call (webhook + media socket, via
 * the provider's peer in test/helpers/), how it carries audio and DTMF, how it
 * signs (and so how a forged request looks) and how it retries a webhook.
 * Everything the cases assert on the gateway side (rows, events) is
 * provider-neutral. Implemented for every ingress adapter: Twilio (twilio.ts),
 * Vonage (vonage.ts), SIP (sip.ts: a scripted UA over UDP with digest auth and
 * PCMU RTP, test/helpers/sip-ua.ts) and WebRTC (webrtc.ts: a werift client
 * peer with Opus, test/helpers/webrtc-client.ts). sipp and Chromium still
 * have their own e2e files (interoperability with real peers).
 *
 * A case that cannot apply to an adapter is declared in `supports` with the
 * reason, and the suite skips it for that driver with the reason as the skip
 * message (never silently).
 */
import type { Gateway } from '../../cli/gateway.ts';
import type { TestGatewayOptions } from '../helpers/gateway.ts';

export type TestGateway = Gateway & { publicUrl: string; dataDir: string };
/** The adapter's name (`calls.provider`): the built-in four, or a test's own (test/fixtures/fake-provider/). */
export type Provider = string;

/** Whether a case applies to an adapter: `true`, or why not (the skip message). */
export type Support = true | { unsupported: string };

/** A request a forger could send, and how the gateway answered it. */
export interface ForgedResult {
  what: string;
  status: number;
  /** The refusal a correct gateway gives (default 403; SIP digest challenges with 401, a WebRTC forged token is 401). */
  expected?: number;
}

/**
 * How a dial came out, whatever the provider's wording: media flowing, refused by the gateway (unknown number),
 * busy (the node is at its limit: Twilio `<Reject reason="busy">`, a Vonage busy message, SIP or WebRTC 503 with
 * a Retry-After), or failed.
 */
export type DialOutcome = { kind: 'streaming' } | { kind: 'refused' } | { kind: 'busy' } | { kind: 'error'; detail: string };

/** One caller on one provider. */
export interface DriverCall {
  /** The provider's id of the call (`calls.provider_call_id`). */
  readonly providerCallId: string;
  /** Places the call: answer webhook, then the media socket. Resolves once streaming, refused or failed. */
  dial(): Promise<DialOutcome>;
  /** Speaks `text` (espeak-ng, at the provider's format) in real time; resolves once sent. */
  speak(text: string): Promise<void>;
  sendDtmf(digit: string): boolean;
  /** The caller hangs up the way the provider reports it (socket close + final status webhook). */
  hangup(): Promise<void>;
  /** Milliseconds of agent audio received so far (all streams). */
  receivedMs(): number;
  /** Mean absolute amplitude (16-bit scale) of the agent audio received after `fromMs` (and before `toMs`). */
  receivedEnergy(fromMs?: number, toMs?: number): number;
  /** Media sockets opened so far (a resume opens another). */
  readonly streams: number;
  /**
   * Barge-in as the caller sees it: Twilio and Vonage count the `clear` commands the gateway sent; over RTP
   * (SIP, WebRTC), which has no such command, the agent talk spurts cut off while the caller was speaking.
   */
  readonly clears: number;
  /** What the provider would have rejected on the media socket. */
  readonly protocolErrors: readonly string[];
  waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void>;
  /** Frees sockets and timers; posts nothing. */
  close(): Promise<void>;
}

export interface IngressDriver {
  readonly name: string;
  readonly provider: Provider;
  /** Options for startTestGateway (the provider's secret is set by default). */
  readonly gatewayOptions?: TestGatewayOptions;
  /** A caller dialling `to` (E.164). */
  call(gw: TestGateway, to: string): DriverCall;
  /** `calls.end_reason` after the caller hung up. */
  readonly hangupReason: string;
  /** Cases that do not apply to every adapter; absent = supported. */
  readonly supports?: {
    /** The media connection dropped by the network and resumed on a new one (same call row). */
    mediaResume?: Support;
    /** The provider delivering the answer of one call several times. */
    retriedAnswer?: Support;
  };
  /**
   * Requests a forger could send (answer webhook unsigned and signed with the
   * wrong key, a status/event webhook unsigned, the media socket's upgrade
   * unsigned; for SIP an INVITE failing trunk admission; for WebRTC a forged or
   * expired session token), each with the status the gateway answered.
   */
  forgedRequests(gw: TestGateway, to: string): Promise<ForgedResult[]>;
  /**
   * The provider delivering the answer webhook of one call `times` times (its
   * retry on a timeout, signed as the provider signs a retry); the statuses
   * and the call's provider id.
   */
  retriedAnswer(gw: TestGateway, to: string, times: number): Promise<{ statuses: number[]; providerCallId: string }>;
}

/** The HTTP status of a WebSocket upgrade (101 when it opened). */
export async function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  const { default: WebSocket } = await import('ws');
  return new Promise<number>((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => (resolve(res.statusCode ?? 0), ws.terminate()));
    ws.on('open', () => (resolve(101), ws.terminate()));
    ws.on('error', () => resolve(-1));
  });
}
