/**
 * `onSilence` and `gather` under a live Twilio call: a silent caller gets
 * the agent's re-prompt after the configured silence, then is hung up on;
 * speaking or pressing a key resets the silence clock.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { deployConcierge } from '../helpers/agent-source.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const open: Array<{ close(): Promise<unknown> | void }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

test('a silent caller hears the agent\'s re-prompt after the silence, a key resets the clock, a second silence hangs up', { timeout: 60_000 }, async () => {
  const gw = await startTestGateway({ env: { SWITCHBOARD_AGENT_SILENCE_MS: '1500' } });
  open.push({ close: () => gw.stop() });
  const NUMBER = '+15550127000';
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' } })).status, 201);
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'concierge', consent_policy: 'short' } })).status, 201);
  assert.equal((await deployConcierge(gw.publicUrl, 'v1', 'rollout=100', { work: tmpDir('sb-silence-') })).status, 201);
  const p = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550008888', redirectRetryMs: 5000 });
  open.push({ close: () => p.close() });
  await p.dial();
  const call = () => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: p.callSid })!;
  const said = () => gw.store.read('default').agent_actions.find({ call_id: call().id }).filter((a) => a.kind === 'say').map((a) => (a.args as { text: string }).text);
  await p.waitFor(() => said().includes('Hello from v1.'), 15_000, 'greeted');
  // A key within the silence window: answered, and the silence clock restarts after the answer.
  await new Promise((r) => setTimeout(r, 800));
  p.sendDtmf('1');
  await p.waitFor(() => said().includes('v1 key 1.'), 8_000, 'key answered');
  assert.ok(!said().includes('Are you still there?'), 'no re-prompt while the caller was active');
  await p.waitFor(() => said().includes('Are you still there?'), 6_000, 're-prompted after silence');
  await p.waitFor(() => call().state === 'ended', 8_000, 'hung up after a second silence');
  assert.equal(call().end_reason, 'caller silent');
  const kinds = [...gw.store.events()].filter((e) => e.reducer === 'agent_turn_started' && (e.args as { call_id: string }).call_id === call().id).map((e) => (e.args as { kind: string }).kind);
  assert.deepEqual(kinds, ['onStart', 'onDtmf', 'onSilence', 'onSilence']);
});
