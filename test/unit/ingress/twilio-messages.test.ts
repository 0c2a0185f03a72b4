import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_MEDIA_PAYLOAD_CHARS, parseInbound } from '../../../ingress/twilio/messages.ts';

const start = {
  event: 'start',
  sequenceNumber: '1',
  streamSid: 'MZ00000000000000000000000000000001',
  start: {
    accountSid: 'AC00000000000000000000000000000001',
    streamSid: 'MZ00000000000000000000000000000001',
    callSid: 'CA00000000000000000000000000000001',
    tracks: ['inbound'],
    customParameters: { token: 'abc' },
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
  },
};

test('Twilio documented messages parse', () => {
  for (const msg of [
    { event: 'connected', protocol: 'Call', version: '1.0.0' },
    start,
    { event: 'media', sequenceNumber: '3', streamSid: 'MZ1', media: { track: 'inbound', chunk: '1', timestamp: '5', payload: 'fw==' } },
    { event: 'dtmf', streamSid: 'MZ1', sequenceNumber: '5', dtmf: { track: 'inbound_track', digit: '1' } },
    { event: 'mark', sequenceNumber: '4', streamSid: 'MZ1', mark: { name: 'p:1:200' } },
    { event: 'stop', sequenceNumber: '5', streamSid: 'MZ1', stop: { accountSid: 'AC1', callSid: 'CA1' } },
  ]) {
    const r = parseInbound(JSON.stringify(msg));
    assert.ok(r.ok && r.msg.event === msg.event, `${msg.event}: ${JSON.stringify(r)}`);
  }
});

test('unknown events are tolerated (logged by the caller), malformed ones are errors', () => {
  const unknown = parseInbound('{"event":"future-thing","x":1}');
  assert.deepEqual(unknown, { ok: true, msg: { event: 'unknown', name: 'future-thing' } });
  const bad: Array<[string, RegExp]> = [
    ['not json', /not JSON/],
    ['[1,2]', /no "event"/],
    [JSON.stringify({ event: 'media', sequenceNumber: '2', media: { payload: 'A'.repeat(MAX_MEDIA_PAYLOAD_CHARS + 4) } }), /payload/],
    ['{"event":"media","sequenceNumber":"-1","media":{"payload":""}}', /sequenceNumber/],
    ['{"event":"dtmf","dtmf":{"digit":"12"}}', /digit/],
    [JSON.stringify({ ...start, start: { ...start.start, mediaFormat: { encoding: 'audio/l16', sampleRate: 16000, channels: 1 } } }), /mediaFormat/],
  ];
  for (const [text, why] of bad) {
    const r = parseInbound(text);
    assert.equal(r.ok, false, text);
    assert.match(!r.ok ? r.error : '', why, text);
  }
});

test('the media fast path accepts only what MediaMsg accepts, and yields exactly what zod yields', async () => {
  const { MediaMsg, plainMedia } = await import('../../../ingress/twilio/messages.ts');
  const base = { event: 'media', sequenceNumber: '3', streamSid: 'MZ1', media: { track: 'inbound', chunk: '1', timestamp: '5', payload: 'fw==' } };
  const values: unknown[] = [undefined, null, 0, 7, '', '1', '0123456789012', '999999999999', 'x1', ' 1', '1.5', 'a'.repeat(65), 'a'.repeat(33), [], {}, ['1'], true];
  const corpus: unknown[] = [base, { ...base, extra: 1, media: { ...base.media, extra: 'x' } }, { ...base, media: [] }, { ...base, media: null }];
  for (const key of ['sequenceNumber', 'streamSid'] as const) for (const v of values) corpus.push({ ...base, [key]: v });
  for (const key of ['track', 'chunk', 'timestamp', 'payload'] as const) for (const v of values) corpus.push({ ...base, media: { ...base.media, [key]: v } });
  for (const len of [MAX_MEDIA_PAYLOAD_CHARS, MAX_MEDIA_PAYLOAD_CHARS + 1]) corpus.push({ ...base, media: { payload: 'A'.repeat(len) } });
  corpus.push({ event: 'media', sequenceNumber: '1', media: { payload: '' } });
  let fast = 0;
  for (const item of corpus) {
    const raw: unknown = JSON.parse(JSON.stringify(item)); // what the socket delivers: no undefined members
    const viaZod = MediaMsg.safeParse(raw);
    const viaFast = plainMedia(raw as Record<string, unknown>);
    if (viaFast !== undefined) {
      fast++;
      assert.ok(viaZod.success, `fast path accepted what zod refuses: ${JSON.stringify(raw)}`);
      assert.deepEqual(viaFast, viaZod.data, JSON.stringify(raw));
    }
    // Through the public parser the answer is zod's either way.
    const r = parseInbound(JSON.stringify(raw));
    assert.equal(r.ok, viaZod.success, JSON.stringify(raw));
    if (r.ok && viaZod.success) assert.deepEqual(r.msg, viaZod.data);
  }
  assert.ok(fast >= 20, `the fast path took the plain valid messages (${fast} of ${corpus.length})`);
  assert.ok(plainMedia(base), 'a documented media message takes the fast path');
});
