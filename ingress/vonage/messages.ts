/**
 * Vonage Voice API wire shapes, validated with zod.
 *
 * Webhooks: the answer webhook (GET query or POST JSON: to, from, uuid,
 * conversation_uuid …) and the event webhook (POST JSON: uuid,
 * conversation_uuid, status …). Numbers arrive in E.164 without the `+`
 * (`447700900000`); `phoneNumber()` restores it so routing sees the form the
 * numbers table holds.
 *
 * WebSocket text messages from Vonage: `websocket:connected` (first; carries
 * the content-type and the NCCO endpoint's `headers`), `websocket:dtmf`,
 * `websocket:cleared` (after our `clear`), `websocket:notify` (echo of our
 * `notify` once the audio before it has played), `websocket:error`; any other
 * event is `unknown`. Outbound text commands: `clear` and `notify`. Audio is
 * binary (16-bit signed little-endian linear PCM), never in these messages.
 */
import { z } from 'zod';

/** Vonage call / leg / conversation ids: UUIDs (conversation ids are `CON-` + UUID). */
const vid = z.string().regex(/^[A-Za-z0-9-]{8,80}$/, 'expected a Vonage uuid');
const party = z.string().max(256);

export const AnswerParams = z
  .object({
    to: z.string().min(1).max(256),
    from: party.default(''),
    uuid: vid,
    conversation_uuid: vid,
    endpoint_type: z.string().max(32).optional(),
    region_url: z.string().max(1024).optional(),
  })
  .passthrough();
export type AnswerParams = z.infer<typeof AnswerParams>;

export const EventBody = z
  .object({
    uuid: vid,
    conversation_uuid: vid.optional(),
    status: z.string().min(1).max(32),
    from: party.optional(),
    to: party.optional(),
    direction: z.string().max(16).optional(),
    timestamp: z.string().max(64).optional(),
    reason: z.string().max(256).optional(),
  })
  .passthrough();
export type EventBody = z.infer<typeof EventBody>;

/** Statuses after which a call leg is over. */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['completed', 'busy', 'failed', 'timeout', 'unanswered', 'rejected', 'cancelled']);

/** `447700900000` → `+447700900000`; SIP URIs, app users and already-prefixed numbers are kept. */
export function phoneNumber(raw: string): string {
  return /^\d{6,15}$/.test(raw) ? `+${raw}` : raw;
}

/** The sample rate of an L16 content-type (`audio/l16;rate=16000`), or null if it is not one we take. */
export function l16Rate(contentType: string): 8000 | 16000 | null {
  const m = /^audio\/l16\s*;\s*rate\s*=\s*(\d+)\s*$/i.exec(contentType.trim());
  if (!m) return null;
  const rate = Number(m[1]);
  return rate === 8000 || rate === 16000 ? rate : null;
}

const header = z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]);

export const ConnectedMsg = z
  .object({ event: z.literal('websocket:connected'), 'content-type': z.string().max(64) })
  .catchall(header.or(z.record(z.string().max(128), header)));

export const DtmfMsg = z.object({
  event: z.literal('websocket:dtmf'),
  digit: z.string().regex(/^[0-9*#A-Da-d]$/),
  duration: z.number().nonnegative().max(60_000).optional(),
});

export const ClearedMsg = z.object({ event: z.literal('websocket:cleared') });

export const NotifyMsg = z.object({
  event: z.literal('websocket:notify'),
  payload: z.record(z.string().max(128), z.unknown()).optional(),
});

export const ErrorMsg = z.object({ event: z.literal('websocket:error') }).passthrough();

export type InboundText =
  | z.infer<typeof ConnectedMsg>
  | z.infer<typeof DtmfMsg>
  | z.infer<typeof ClearedMsg>
  | z.infer<typeof NotifyMsg>
  | (z.infer<typeof ErrorMsg> & { event: 'websocket:error' })
  | { event: 'unknown'; name: string };

/** By event name. A Map, not an object: a wire string such as "constructor" must not find Object.prototype's members. */
const SCHEMAS: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>([
  ['websocket:connected', ConnectedMsg],
  ['websocket:dtmf', DtmfMsg],
  ['websocket:cleared', ClearedMsg],
  ['websocket:notify', NotifyMsg],
  ['websocket:error', ErrorMsg],
]);

/** Text frames larger than this are not Vonage control messages. */
export const MAX_TEXT_CHARS = 16 * 1024;

export type ParseResult = { ok: true; msg: InboundText } | { ok: false; error: string };

/** Parses one text frame: bad JSON or a known event with a bad shape is an error; an unknown event is not. */
export function parseText(text: string): ParseResult {
  if (text.length > MAX_TEXT_CHARS) return { ok: false, error: `text frame of ${text.length} chars` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: 'not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || typeof (raw as { event?: unknown }).event !== 'string') {
    return { ok: false, error: 'no "event" field' };
  }
  const event = (raw as { event: string }).event;
  const schema = SCHEMAS.get(event);
  if (!schema) return { ok: true, msg: { event: 'unknown', name: event.slice(0, 64) } };
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `${event}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`.trim() };
  }
  return { ok: true, msg: parsed.data as InboundText };
}

/** The one-time stream token among the `websocket:connected` headers. */
export function connectedToken(msg: z.infer<typeof ConnectedMsg>): string | undefined {
  const t = (msg as Record<string, unknown>)['token'];
  return typeof t === 'string' ? t : undefined;
}

export const outbound = {
  clear: (): string => '{"action":"clear"}',
  notify: (payload: Record<string, string>): string => JSON.stringify({ action: 'notify', payload }),
};
