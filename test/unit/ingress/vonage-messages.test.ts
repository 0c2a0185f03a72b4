/** Vonage wire shapes: WebSocket text messages, webhook params, number form, L16 content types, NCCOs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnswerParams, connectedToken, EventBody, l16Rate, MAX_TEXT_CHARS, outbound, parseText, phoneNumber } from '../../../ingress/vonage/messages.ts';
import { streamNcco, transferNcco, unknownNumberNcco } from '../../../ingress/vonage/ncco.ts';

test('documented WebSocket messages parse', () => {
  const connected = parseText(JSON.stringify({ event: 'websocket:connected', 'content-type': 'audio/l16;rate=16000', token: 'tok_123', other: 7 }));
  assert.ok(connected.ok && connected.msg.event === 'websocket:connected');
  assert.equal(connectedToken(connected.msg), 'tok_123');
  for (const msg of [
    { event: 'websocket:dtmf', digit: '5', duration: 260 },
    { event: 'websocket:dtmf', digit: '#' },
    { event: 'websocket:cleared' },
    { event: 'websocket:notify', payload: { mark: 'e:1' } },
    { event: 'websocket:error', reason: 'buffer full' },
  ]) {
    const r = parseText(JSON.stringify(msg));
    assert.ok(r.ok && r.msg.event === msg.event, `${msg.event}: ${JSON.stringify(r)}`);
  }
});

test('unknown events are tolerated; malformed ones are errors', () => {
  assert.deepEqual(parseText('{"event":"websocket:future"}'), { ok: true, msg: { event: 'unknown', name: 'websocket:future' } });
  const bad: Array<[string, RegExp]> = [
    ['not json', /not JSON/],
    ['[1]', /no "event"/],
    ['{"event":"websocket:dtmf","digit":"12"}', /digit/],
    ['{"event":"websocket:dtmf"}', /digit/],
    ['{"event":"websocket:connected"}', /content-type/],
    [`{"event":"x","pad":"${'a'.repeat(MAX_TEXT_CHARS)}"}`, /text frame/],
  ];
  for (const [text, re] of bad) {
    const r = parseText(text);
    assert.ok(!r.ok, text.slice(0, 40));
    assert.match(r.error, re);
  }
});

test('webhook params: answer and event', () => {
  const a = AnswerParams.safeParse({ to: '15557770000', from: '15550001111', uuid: '63f61863-4a51-4f6b-86e1-46edebcf9356', conversation_uuid: 'CON-f972836a-550f-45fa-956c-12a2ab5b7d22', region_url: 'https://api-us-3.vonage.com' });
  assert.ok(a.success);
  assert.ok(!AnswerParams.safeParse({ to: '1', uuid: 'x y', conversation_uuid: 'CON-1234567890' }).success);
  assert.ok(EventBody.safeParse({ uuid: '63f61863-4a51-4f6b-86e1-46edebcf9356', status: 'completed', conversation_uuid: 'CON-f972836a-550f-45fa-956c-12a2ab5b7d22', timestamp: '2024-01-01T00:00:00.000Z' }).success);
  assert.ok(!EventBody.safeParse({ uuid: '63f61863-4a51-4f6b-86e1-46edebcf9356' }).success);
});

test('numbers, content types and outbound commands', () => {
  assert.equal(phoneNumber('447700900000'), '+447700900000');
  assert.equal(phoneNumber('+447700900000'), '+447700900000');
  assert.equal(phoneNumber('sip:alice@example.com'), 'sip:alice@example.com');
  assert.equal(l16Rate('audio/l16;rate=16000'), 16000);
  assert.equal(l16Rate('audio/L16; rate=8000'), 8000);
  assert.equal(l16Rate('audio/l16;rate=24000'), null);
  assert.equal(l16Rate('audio/x-mulaw'), null);
  assert.deepEqual(JSON.parse(outbound.clear()), { action: 'clear' });
  assert.deepEqual(JSON.parse(outbound.notify({ mark: 'p:1:200' })), { action: 'notify', payload: { mark: 'p:1:200' } });
});

test('NCCOs: stream with a synchronous eventUrl, unknown number, transfer', () => {
  const [connect] = streamNcco({ mediaUrl: 'wss://gw.example/vonage/media', eventUrl: 'https://gw.example/vonage/event', token: 't0k', rate: 16000, from: '+15557770000' });
  assert.deepEqual(connect, {
    action: 'connect',
    eventType: 'synchronous',
    eventUrl: ['https://gw.example/vonage/event'],
    eventMethod: 'POST',
    from: '15557770000',
    endpoint: [{ type: 'websocket', uri: 'wss://gw.example/vonage/media', 'content-type': 'audio/l16;rate=16000', headers: { token: 't0k' }, authorization: { type: 'vonage' } }],
  });
  assert.equal(unknownNumberNcco()[0]?.action, 'talk');
  assert.deepEqual(transferNcco('+15551230000'), [{ action: 'connect', endpoint: [{ type: 'phone', number: '15551230000' }] }]);
  assert.deepEqual(transferNcco('sip:desk@pbx.example'), [{ action: 'connect', endpoint: [{ type: 'sip', uri: 'sip:desk@pbx.example' }] }]);
});
