import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scanMedia } from '../../../ingress/twilio/media-scan.ts';
import { MAX_MEDIA_PAYLOAD_CHARS, parseInbound } from '../../../ingress/twilio/messages.ts';

const payload = Buffer.from(Array.from({ length: 160 }, (_, i) => (i * 37) & 0xff)).toString('base64');
const plain = { event: 'media', sequenceNumber: '42', media: { track: 'inbound', chunk: '41', timestamp: '820', payload }, streamSid: 'MZ0123456789abcdef0123456789abcdef' };

/** What the full path makes of `text`, in the scanner's terms; null when it is not an accepted media message. */
function fullPath(text: string): { sequenceNumber: number; inbound: boolean; payload: string } | null {
  const r = parseInbound(text);
  if (!r.ok || r.msg.event !== 'media') return null;
  const track = r.msg.media.track;
  return { sequenceNumber: Number(r.msg.sequenceNumber), inbound: track === undefined || track === 'inbound', payload: r.msg.media.payload };
}

/** The scanner never accepts what the full path refuses, and agrees on what it accepts. */
function agree(text: string): boolean {
  const bytes = Buffer.from(text);
  const fast = scanMedia(bytes);
  if (!fast) return false;
  const full = fullPath(text);
  assert.ok(full, `scanner accepted what the full path refuses: ${JSON.stringify(text)}`);
  assert.equal(fast.sequenceNumber, full.sequenceNumber, text);
  assert.equal(fast.inbound, full.inbound, text);
  assert.equal(bytes.subarray(fast.payloadStart, fast.payloadEnd).toString('latin1'), full.payload, text);
  return true;
}

test('the plain shapes Twilio sends are read by the scanner, with the full path\'s meaning', () => {
  const variants = [
    plain,
    { ...plain, media: { payload } },
    { event: 'media', sequenceNumber: '7', media: { payload } },
    { ...plain, media: { ...plain.media, track: 'outbound' } },
    { media: plain.media, streamSid: 'MZ1', sequenceNumber: '000000000009', event: 'media' },
    { ...plain, media: { ...plain.media, payload: '' } },
  ];
  for (const v of variants) assert.ok(agree(JSON.stringify(v)), JSON.stringify(v));
  assert.ok(agree(JSON.stringify(plain, null, 2)), 'JSON whitespace');
});

test('everything unusual is left to the full path (null), never misread', () => {
  const bad = [
    '',
    'null',
    '[]',
    JSON.stringify({ ...plain, event: 'mark' }),
    JSON.stringify({ ...plain, extra: '1' }),
    JSON.stringify({ ...plain, sequenceNumber: 42 }),
    JSON.stringify({ ...plain, sequenceNumber: '1234567890123' }),
    JSON.stringify({ ...plain, sequenceNumber: '' }),
    JSON.stringify({ ...plain, streamSid: '' }),
    JSON.stringify({ ...plain, streamSid: 'x'.repeat(65) }),
    JSON.stringify({ ...plain, media: { ...plain.media, track: 'x'.repeat(33) } }),
    JSON.stringify({ ...plain, media: { ...plain.media, chunk: 'a' } }),
    JSON.stringify({ ...plain, media: { ...plain.media, payload: 'A'.repeat(MAX_MEDIA_PAYLOAD_CHARS + 4) } }),
    JSON.stringify({ ...plain, media: { track: 'inbound' } }),
    JSON.stringify({ ...plain, media: 'x' }),
    JSON.stringify({ ...plain, streamSid: 'MZ\u00e9' }),
    JSON.stringify({ ...plain, streamSid: 'MZ"1' }),
    JSON.stringify({ event: 'media', media: plain.media }),
    JSON.stringify(plain).replace('"media","sequenceNumber"', '"media","event":"media","sequenceNumber"'),
    JSON.stringify(plain).replace('"track"', '"tr\\u0061ck"'),
    JSON.stringify(plain) + 'x',
    JSON.stringify(plain).slice(0, -1),
    '\ufeff' + JSON.stringify(plain),
  ];
  for (const text of bad) assert.equal(scanMedia(Buffer.from(text)), null, text);
});

test('differential: random mutations of media messages are never accepted by the scanner alone', () => {
  let seed = 2463534242;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const junk = ['"', '\\', '{', '}', ':', ',', ' ', '\n', '0', '9', 'a', '=', '+', '/', '\u00e9', '\u0000', 'media', '"event":"media",', '"x":1,', '[', ']', 'null', '-', '.'];
  const bases = [JSON.stringify(plain), JSON.stringify({ event: 'media', sequenceNumber: '7', media: { payload: 'fw==' } }), JSON.stringify(plain, null, 1)];
  let accepted = 0;
  for (let k = 0; k < 20_000; k++) {
    let text = bases[rand(bases.length)] as string;
    for (let m = 1 + rand(3); m > 0; m--) {
      const at = rand(text.length + 1);
      const op = rand(3);
      const piece = junk[rand(junk.length)] as string;
      if (op === 0) text = text.slice(0, at) + piece + text.slice(at);
      else if (op === 1) text = text.slice(0, at) + text.slice(at + 1 + rand(4));
      else text = text.slice(0, at) + piece + text.slice(at + piece.length);
    }
    if (agree(text)) accepted++;
  }
  assert.ok(accepted > 100, `some mutants are still plain media messages (${accepted})`);
});
