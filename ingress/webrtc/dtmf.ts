/**
 * DTMF from a browser, two ways, one digit each:
 *
 *  - RFC 4733 telephone-event RTP packets (what `RTCDTMFSender.insertDTMF`
 *    sends; Chromium uses telephone-event/8000 even when /48000 is offered).
 *    An event is repeated in several packets (and its end packet three times)
 *    with the same RTP timestamp: one digit per timestamp.
 *  - a data-channel message `{"type":"dtmf","digit":"2"}` (apps that cannot
 *    insert DTMF into the audio track).
 */

const EVENTS = '0123456789*#ABCD';

/** The digit of an RFC 4733 payload (events 0-15), or null (not DTMF, or too short). */
export function telephoneEventDigit(payload: Uint8Array): string | null {
  if (payload.length < 4) return null;
  const event = payload[0] as number;
  return event < EVENTS.length ? (EVENTS[event] as string) : null;
}

/** Reports each RFC 4733 event once, whatever the repeats and retransmitted end packets. */
export class TelephoneEventDeduper {
  private readonly seen: number[] = [];

  /** Returns the digit if this packet starts an event not seen before. */
  accept(payload: Uint8Array, rtpTimestamp: number): string | null {
    const digit = telephoneEventDigit(payload);
    if (digit === null || this.seen.includes(rtpTimestamp)) return null;
    this.seen.push(rtpTimestamp);
    if (this.seen.length > 16) this.seen.shift();
    return digit;
  }
}

/** A data-channel DTMF message's digit, or null when the message is something else or malformed. */
export function dataChannelDigit(message: string | Buffer): string | null {
  const text = typeof message === 'string' ? message : message.toString('utf8');
  if (text.length > 200) return null;
  try {
    const msg = JSON.parse(text) as unknown;
    if (typeof msg !== 'object' || msg === null) return null;
    const { type, digit } = msg as { type?: unknown; digit?: unknown };
    if (type !== 'dtmf' || typeof digit !== 'string' || digit.length !== 1) return null;
    const d = digit.toUpperCase();
    return EVENTS.includes(d) ? d : null;
  } catch {
    return null;
  }
}
