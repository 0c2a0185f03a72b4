/**
 * REFER settings and bookkeeping (ingress/sip/refer.ts): SWITCHBOARD_SIP_REFER parsed per route and trunk, the route
 * key of a dialog, sipfrag status lines, and a transfer whose REFER is refused or that ends with the call.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Dialog, type DialogSnapshot } from '../../../ingress/sip/dialog.ts';
import { ReferFailed, ReferRoutes, SipRefers, referKey, referTo, sipfragStatus } from '../../../ingress/sip/refer.ts';

const snap = (over: Partial<DialogSnapshot> = {}): DialogSnapshot => ({
  callId: 'c1', localTag: 'l', remoteTag: 'r', localUri: '<sip:15550100@10.0.0.9>', remoteUri: '<sip:caller@10.1.2.3>', remoteTarget: 'sip:caller@10.1.2.3',
  routeSet: [], localCseq: 1, remoteCseq: 1, transport: 'udp', peer: { address: '::ffff:10.1.2.3', port: 5060 }, rtpPort: 30000,
  remoteMedia: { address: '10.1.2.3', port: 40000 }, codec: 'PCMU', payloadType: 0, eventPayloadType: 101, sdpSession: 1, sdpVersion: 1, ...over,
});

test('SWITCHBOARD_SIP_REFER: one setting for every call, or rules per route and trunk (the most specific wins); a bad word names the variable', () => {
  const none = { transfer: false, accept: false };
  assert.deepEqual(ReferRoutes.none().forCall({ source: '10.0.0.1', number: '+1' }), none);
  assert.deepEqual(ReferRoutes.parse(undefined).forCall({ source: '10.0.0.1', number: '+1' }), none);
  assert.deepEqual(ReferRoutes.parse('transfer').forCall({ source: '10.0.0.1', number: '+1' }), { transfer: true, accept: false });
  const r = ReferRoutes.parse('*=transfer, 10.1.0.0/16=none, +15550100=transfer/accept, +15550101=accept');
  assert.deepEqual(r.forCall({ source: '192.0.2.1', number: '+1' }), { transfer: true, accept: false });
  assert.deepEqual(r.forCall({ source: '10.1.2.3', number: '+1' }), none);
  assert.deepEqual(r.forCall({ source: '10.1.2.3', number: '+15550100' }), { transfer: true, accept: true });
  assert.deepEqual(r.forCall({ source: '10.1.2.3', number: '+15550101' }), { transfer: false, accept: true });
  assert.throws(() => ReferRoutes.parse('+1=blind'), /SWITCHBOARD_SIP_REFER \+1: "blind" is not transfer, accept, transfer\/accept or none/);
  assert.throws(() => ReferRoutes.parse('+1=accept/none'), /is not transfer, accept/);
  assert.throws(() => ReferRoutes.parse('=transfer, x'), /SWITCHBOARD_SIP_REFER: .*KEY=SETTINGS/);
});

test('the route key of a dialog: the peer address unmapped and our number with its +', () => {
  assert.deepEqual(referKey(new Dialog(snap())), { source: '10.1.2.3', number: '+15550100' });
  assert.deepEqual(referKey(new Dialog(snap({ localUri: '"Desk" <sip:desk@pbx.example>;x=1' }))), { source: '10.1.2.3', number: 'desk' });
});

test('Refer-To: a URI as given, a number as tel:', () => {
  assert.equal(referTo('sip:desk@pbx.example'), 'sip:desk@pbx.example');
  assert.equal(referTo(' +15559990000 '), 'tel:+15559990000');
  assert.equal(referTo('<sip:a@b>'), 'sip:a@b');
});

test('sipfrag status lines', () => {
  assert.equal(sipfragStatus('SIP/2.0 100 Trying\r\n'), 100);
  assert.equal(sipfragStatus('SIP/2.0 200 OK'), 200);
  assert.equal(sipfragStatus('sip/2.0 486 Busy Here\r\nVia: x'), 486);
  assert.equal(sipfragStatus('hello'), null);
});

test('a transfer whose REFER is refused fails with the status; one the call outlives fails when the call ends; one at a time per call', async () => {
  const log = pino({ level: 'silent' });
  const refused = new SipRefers({ log, send: async () => 403, respond: () => undefined });
  await assert.rejects(refused.transfer(new Dialog(snap()), 'sip:desk@x', '<sip:me@y>'), (e: Error) => e instanceof ReferFailed && /REFER answered 403/.test(e.message));
  const silent = new SipRefers({ log, send: async () => null, respond: () => undefined });
  await assert.rejects(silent.transfer(new Dialog(snap()), 'sip:desk@x', '<sip:me@y>'), /REFER was not answered/);

  let sent: string[] = [];
  const accepted = new SipRefers({
    log,
    send: async (_d, build) => {
      const headers = new Map<string, string>();
      build({ headers: { add: (k: string, v: string) => headers.set(k, v) } } as never);
      sent = [headers.get('refer-to') ?? '', headers.get('referred-by') ?? ''];
      return 202;
    },
    respond: () => undefined,
  });
  const dialog = new Dialog(snap());
  const running = accepted.transfer(dialog, 'sip:desk@x', '<sip:me@y>');
  await assert.rejects(accepted.transfer(dialog, 'sip:other@x', '<sip:me@y>'), /already in progress/);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent, ['<sip:desk@x>', '<sip:me@y>']);
  accepted.forget(dialog);
  await assert.rejects(running, /the call ended during the transfer/);
});
