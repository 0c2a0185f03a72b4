/**
 * UPDATE before the answer on an outbound call (RFC 3311 §5.2, early-update.ts), against sipp as the called party in
 * a private network namespace (a fixed port for sipp is safe there): the callee answers our offer in a 183, then
 * offers PCMA at another port in an UPDATE in the early dialog; we answer 200 with PCMA, and the call, once
 * answered, runs with that offer/answer (its leg is PCMA). No duration is asserted.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { resultOf } from '../helpers/store.ts';
import { number_added } from '../../schema/reducers.ts';

const NUMBER = '+15554440300';

if (insidePrivateNetwork(import.meta.filename, 180_000)) {
  let gw: Awaited<ReturnType<typeof startTestGateway>>;
  before(async () => {
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31000-31099' } });
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default' }, { tenant: 'default', caller: 'test' }));
  });
  after(async () => {
    await gw?.stop();
  });

  test('the callee UPDATEs its media in the early dialog (PCMA, a new port): 200 with a PCMA answer, and the answered call runs PCMA', { timeout: 90_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_early_update.xml', ip: '127.0.0.1', port: 5081 });
    const r = await api<{ call_id: string }>(gw.publicUrl, 'POST', '/v1/calls', { token: ADMIN_TOKEN, body: { from: NUMBER, to: 'sip:bob@127.0.0.1:5081' } });
    assert.equal(r.status, 202);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const ok = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /CSeq:\s*1 UPDATE/i.test(m.text))!;
    assert.match(ok.text, /m=audio \d+ RTP\/AVP 8/);
    const read = () => gw.store.read('default');
    const end = Date.now() + 20_000;
    while (read().calls.get(r.body.call_id)?.state !== 'ended' && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
    const call = read().calls.get(r.body.call_id)!;
    assert.equal(call.state, 'ended');
    assert.ok(call.answered_at !== null);
    assert.equal(read().legs.find({ call_id: call.id })[0]?.codec, 'PCMA');
  });
}
