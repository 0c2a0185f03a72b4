/**
 * What the Twilio peer reads on a Media Stream: the gateway's `media`, `mark`
 * and `clear` messages, checked as Twilio would check them (text frames, JSON,
 * the stream's own streamSid, base64 payloads, a mark name). Pure, so the
 * peer's socket handler only acts on the result.
 */
import type WebSocket from 'ws';

export type GatewayMessage =
  | { kind: 'media'; audio: Buffer }
  | { kind: 'mark'; name: string }
  | { kind: 'clear' }
  /** Not a message Twilio acts on (kept for the test to inspect). */
  | { kind: 'unknown'; msg: unknown }
  /** What Twilio would reject. */
  | { kind: 'error'; error: string };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function parseGatewayMessage(data: WebSocket.RawData, isBinary: boolean, streamSid: string): GatewayMessage {
  if (isBinary) return { kind: 'error', error: 'binary frame' };
  const text = (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)).toString('utf8');
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { kind: 'error', error: `invalid JSON: ${text.slice(0, 80)}` };
  }
  const m = (msg && typeof msg === 'object' ? msg : {}) as Record<string, unknown>;
  const event = m.event;
  if (event !== 'media' && event !== 'mark' && event !== 'clear') return { kind: 'unknown', msg };
  if (m.streamSid !== streamSid) return { kind: 'error', error: `${event}: streamSid ${String(m.streamSid)} is not ${streamSid}` };
  const body = (m[event] ?? {}) as Record<string, unknown>;
  if (event === 'media') {
    const payload = body.payload;
    if (typeof payload !== 'string' || payload.length % 4 !== 0 || !BASE64.test(payload)) return { kind: 'error', error: 'media: media.payload is not base64' };
    return { kind: 'media', audio: Buffer.from(payload, 'base64') };
  }
  if (event === 'mark') {
    if (typeof body.name !== 'string') return { kind: 'error', error: 'mark: mark.name is missing' };
    return { kind: 'mark', name: body.name };
  }
  return { kind: 'clear' };
}
