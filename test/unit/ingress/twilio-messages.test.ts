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
