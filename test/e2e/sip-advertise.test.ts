/**
 * SWITCHBOARD_SIP_ADVERTISE (README "Point a SIP trunk at it"): bound to 0.0.0.0, the gateway puts the advertised
 * address in its SDP (o=, c=) and Contact — for every peer, a peer on loopback included (a SIP proxy on the same host
 * relays our SDP to phones elsewhere: 127.0.0.1 would send their audio nowhere) — and the caller's RTP sent there
 * reaches the call.
 *
 * Inside a private network namespace whose loopback also holds 10.99.0.2 (a caller) and 10.99.0.7 (the advertised
 * address); with no other interface, the gateway left to itself would answer 127.0.0.1. sipp's `uac_pcap`
 * call sends its RTP, DTMF 1 included, to the c= address of our answer: an opt-in consent granted by that 1 proves
 * the media came in through the advertised address.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { after, before, test } from 'node:test';
import { startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { runSipp, type SippRun } from '../helpers/sipp.ts';
import { resultOf } from '../helpers/store.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15553336666';
const SERVICE = '15553336666';
const ADVERTISED = '10.99.0.7';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  let gw: Gw;
  before(async () => {
    execFileSync('sh', ['-c', 'ip addr add 10.99.0.2/32 dev lo && ip addr add 10.99.0.7/32 dev lo']);
    gw = await startTestGateway({
      env: { SWITCHBOARD_HOST: '0.0.0.0', SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '33000-33099', SWITCHBOARD_SIP_ADVERTISE: ADVERTISED },
    });
    const who = { tenant: 'default', caller: 'test' };
    const p = resultOf<{ policy_id: string }>(
      await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 25_000, retries: 0 }, who),
    );
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  });
  after(async () => {
    await gw?.stop();
  });

  const read = () => gw.store.read('default');

  async function callFrom(local: string): Promise<{ run: SippRun; ok: SippRun['messages'][number] }> {
    const run = await runSipp({ scenario: 'uac_pcap', port: 5060, service: SERVICE, local });
    assert.equal(run.code, 0, run.output);
    const ok = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('SIP/2.0 200') && /^CSeq:\s*1 INVITE/im.test(m.text));
    assert.ok(ok, 'a 200 OK to the INVITE');
    return { run, ok };
  }

  async function consentOf(run: SippRun) {
    const sipCallId = /^Call-ID:\s*(\S+)/im.exec(run.messages[0]?.text ?? '')?.[1];
    const end = Date.now() + 15_000;
    for (;;) {
      const call = read().calls.findOne({ provider: 'sip', provider_call_id: sipCallId ?? '' });
      if (call?.state === 'ended') return read().consents.get(call.consent_id!);
      assert.ok(Date.now() < end, `call ${sipCallId} did not end`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('the namespace: no external interface, so left to itself the gateway would answer 127.0.0.1', () => {
    const external = Object.values(os.networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal);
    assert.deepEqual(external, []);
  });

  for (const [who, local] of [['a caller on another address (10.99.0.2)', '10.99.0.2'], ['a caller on loopback (127.0.0.1)', '127.0.0.1']] as const) {
    test(`${who}: SDP o=/c= and Contact carry ${ADVERTISED}; its RTP (DTMF 1) sent there grants consent`, { timeout: 90_000 }, async () => {
      const { run, ok } = await callFrom(local);
      assert.match(ok.text, new RegExp(`^c=IN IP4 ${ADVERTISED.replace(/\./g, '\\.')}\\r?$`, 'm'));
      assert.match(ok.text, new RegExp(`^o=\\S+ \\d+ \\d+ IN IP4 ${ADVERTISED.replace(/\./g, '\\.')}\\r?$`, 'm'));
      assert.match(ok.text, new RegExp(`^Contact: <sip:switchboard@${ADVERTISED.replace(/\./g, '\\.')}:5060>`, 'm'));
      const consent = await consentOf(run);
      assert.equal(consent?.outcome, 'granted');
      assert.equal(consent?.method, 'dtmf');
    });
  }
}
