/** The Twilio peer's public shapes: options, dial results, end reasons and events. */
export interface TwilioPeerOptions {
  publicUrl: string; // the gateway's SWITCHBOARD_PUBLIC_URL, e.g. http://127.0.0.1:8080
  authToken: string | null; // null: send no X-Twilio-Signature
  from?: string;
  to: string;
  callSid?: string; // default 'CA' + 32 hex
  accountSid?: string; // default 'AC' + 32 hex
  redirectRetryMs?: number; // keep retrying a refused webhook this long (default 15000)
  idleSilence?: boolean; // send 0xFF frames whenever nothing is playing (default true)
  followRedirect?: boolean; // when the gateway closes the stream, continue the TwiML (default true)
  statusOnEnd?: boolean; // POST `completed` when the call ends other than by hangup()/close() (default true)
  direction?: string; // the webhooks' Direction (default 'inbound'; 'outbound-api' for a call placed through the REST API)
  params?: Record<string, string>; // more parameters on every voice webhook (e.g. AnsweredBy)
}

export type DialResult =
  | { kind: 'rejected' }
  | { kind: 'streaming'; streamSid: string }
  | { kind: 'error'; status?: number; body?: string; reason: string };

/** hangup(), close(), <Reject>, <Hangup>, out of verbs, gateway closed the stream with followRedirect off, WS
 * handshake failed, connection refused for redirectRetryMs, non-2xx/wrong type/timeout, unparseable TwiML. */
export type EndReason =
  | 'hangup' | 'closed' | 'rejected' | 'twiml-hangup' | 'twiml-ended' | 'stream-closed' | 'stream-failed'
  | 'retry-exhausted' | 'http-error' | 'bad-twiml';

export interface StreamInfo {
  streamSid: string;
  url: string;
  customParameters: Record<string, string>;
  closedBy?: 'peer' | 'gateway';
  closeCode?: number;
  closeReason?: string;
}
export interface RedirectInfo { url: string; method: 'GET' | 'POST'; cause: 'redirect' | 'connect-action' }
export type PeerEvents = {
  stream: [info: StreamInfo];
  redirect: [info: RedirectInfo];
  dialed: [target: string | undefined];
  ended: [reason: EndReason, detail: string];
  media: [payload: Buffer];
  mark: [name: string, how: 'played' | 'cleared'];
};
