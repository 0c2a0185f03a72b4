/**
 * Accepting REFER (ingress/sip/refer-accept.ts) without a network: the Refer-To checks (400 reasons), the sipfrag
 * status a failed call onward is reported with, and the order of answers — 202, NOTIFY 100 (active), the final NOTIFY
 * (terminated), then the referring dialog ended — or a 403 when call control refuses.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Dialog, type DialogSnapshot } from '../../../ingress/sip/dialog.ts';
import { Headers } from '../../../ingress/sip/headers.ts';
import type { SipRequest } from '../../../ingress/sip/message.ts';
import { acceptRefer, failureStatus, referToTarget, sipfrag } from '../../../ingress/sip/refer-accept.ts';
import type { NonInviteServerTransaction } from '../../../ingress/sip/transaction.ts';
import type { ValidRequest } from '../../../ingress/sip/validate.ts';
import type { Dialled } from '../../../bridge/transfer-dial.ts';

const log = pino({ level: 'silent' });

function refer(...referTo: string[]): SipRequest {
  const h = new Headers();
  for (const r of referTo) h.add('refer-to', r);
  return { kind: 'request', method: 'REFER', uri: 'sip:switchboard@10.0.0.9', version: 'SIP/2.0', badStartLine: false, headers: h, body: Buffer.alloc(0) };
}

test('Refer-To: one sip:, sips: or tel: URI; anything else says why (the 400 reason)', () => {
  assert.deepEqual(referToTarget(refer('<sip:desk@10.0.0.5:5072>')), { ok: true, uri: 'sip:desk@10.0.0.5:5072' });
  assert.deepEqual(referToTarget(refer('"Desk" <sips:desk@pbx.example>;x=1')), { ok: true, uri: 'sips:desk@pbx.example' });
  assert.deepEqual(referToTarget(refer('tel:+15559990000')), { ok: true, uri: 'tel:+15559990000' });
  const why = (r: ReturnType<typeof referToTarget>) => (r.ok ? 'ok' : r.why);
  assert.equal(why(referToTarget(refer())), 'no Refer-To');
  assert.equal(why(referToTarget(refer('<sip:a@b>', '<sip:c@d>'))), 'more than one Refer-To');
  assert.equal(why(referToTarget(refer('<http://example.test/x>'))), 'Refer-To must be a sip:, sips: or tel: URI');
  assert.equal(why(referToTarget(refer('<tel:5551234>'))), 'Refer-To is not a global tel: number (tel:+E.164)');
  assert.equal(why(referToTarget(refer('<sip:@>'))), 'Refer-To is not a valid SIP URI');
  assert.match(why(referToTarget(refer('<sip:desk@pbx.example?Replaces=abc%3Bto-tag%3D1>'))), /Replaces: attended transfer\) is not supported/);
  assert.equal(why(referToTarget(refer('<>'))), 'an empty Refer-To');
});

test("a failed call onward is reported with the dialled call's own status, else by what happened", () => {
  const failed = (over: Partial<Extract<Dialled, { ok: false }>>): Extract<Dialled, { ok: false }> => ({ ok: false, reason: 'failed', detail: '', endReason: null, callId: 'x', ...over });
  assert.equal(failureStatus(failed({ reason: 'busy', endReason: 'sip:busy' })), 486);
  assert.equal(failureStatus(failed({ reason: 'declined', endReason: 'sip:declined' })), 603);
  assert.equal(failureStatus(failed({ endReason: 'sip:server-error-502' })), 502);
  assert.equal(failureStatus(failed({ endReason: 'sip:rejected-415' })), 415);
  assert.equal(failureStatus(failed({ reason: 'no_answer', endReason: null })), 408);
  assert.equal(failureStatus(failed({ reason: 'busy', endReason: 'twilio:busy' })), 486);
  assert.equal(failureStatus(failed({ reason: 'failed', endReason: null, callId: null })), 503, 'the dial router could not place it');
  assert.equal(sipfrag(486), 'SIP/2.0 486 Busy Here\r\n');
  assert.equal(sipfrag(100), 'SIP/2.0 100 Trying\r\n');
});

const snap: DialogSnapshot = {
  callId: 'c1', localTag: 'l', remoteTag: 'r', localUri: '<sip:+15550100@10.0.0.9>', remoteUri: '<sip:human@10.1.2.3>', remoteTarget: 'sip:human@10.1.2.3',
  routeSet: [], localCseq: 1, remoteCseq: 7, transport: 'udp', peer: { address: '10.1.2.3', port: 5060 }, rtpPort: 30000,
  remoteMedia: { address: '10.1.2.3', port: 40000 }, codec: 'PCMU', payloadType: 0, eventPayloadType: 101, sdpSession: 1, sdpVersion: 1,
};

async function run(referred: ReturnType<Parameters<typeof acceptRefer>[0]['referred']>, referTo = '<sip:desk@10.0.0.5>') {
  const events: string[] = [];
  let ended!: () => void;
  const endedP = new Promise<void>((r) => (ended = r));
  const v = { req: refer(referTo), callId: 'c1', cseq: { seq: 7, method: 'REFER' } } as unknown as ValidRequest;
  acceptRefer(
    {
      log,
      respond: (_tx, status, opts) => void events.push(`respond ${status} ${opts?.reason ?? ''}`.trim()),
      send: async (_d, method, build) => {
        const req = refer();
        build(req);
        events.push(`${method} ${req.headers.get('event')} ${req.headers.get('subscription-state')} ${req.body.toString().trim()}`);
        return 200;
      },
      referred: () => referred,
      endReferred: () => {
        events.push('end');
        ended();
      },
    },
    {} as NonInviteServerTransaction,
    v,
    new Dialog({ ...snap }),
    { tenant: 'acme', callId: 'h1' },
    '10.0.0.9',
  );
  return { events, ended: endedP };
}

test('accepted: 202, NOTIFY 100 (active), NOTIFY 200 (terminated), then the referring dialog ends', async () => {
  const r = await run({ done: Promise.resolve({ ok: true, callId: 'd1', leg: null as never }) });
  await r.ended;
  assert.deepEqual(r.events, ['respond 202 Accepted', 'NOTIFY refer;id=7 active;expires=60 SIP/2.0 100 Trying', 'NOTIFY refer;id=7 terminated;reason=noresource SIP/2.0 200 OK', 'end']);
});

test('the target busy: NOTIFY 486 (terminated), and the referring dialog stays', async () => {
  const r = await run({ done: Promise.resolve({ ok: false, reason: 'busy', detail: '', endReason: 'sip:busy', callId: 'd1' }) });
  while (r.events.length < 3) await new Promise((res) => setImmediate(res));
  await new Promise((res) => setImmediate(res));
  assert.deepEqual(r.events, ['respond 202 Accepted', 'NOTIFY refer;id=7 active;expires=60 SIP/2.0 100 Trying', 'NOTIFY refer;id=7 terminated;reason=noresource SIP/2.0 486 Busy Here']);
});

test('refused by call control: 403 with the reason; a bad Refer-To: 400 before call control is asked', async () => {
  const refused = await run({ refused: 'the agent cannot be transferred' });
  assert.deepEqual(refused.events, ['respond 403 Forbidden (the agent cannot be transferred)']);
  const bad = await run({ refused: 'never asked' }, '<mailto:x@y>');
  assert.deepEqual(bad.events, ['respond 400 Bad Request (Refer-To must be a sip:, sips: or tel: URI)']);
});
