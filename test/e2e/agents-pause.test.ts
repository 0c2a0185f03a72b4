/**
 * Pausing an agent under live Twilio calls (the Twilio peer: signed webhooks, real-time paced µ-law; the agent a
 * real bundle in a worker thread):
 *
 *  - paused while a call's turn runs: that turn finishes (its words are heard), then the call gets the number's
 *    fallback (a message, then a hang-up); the paused agent's worker stops
 *  - a new call while paused gets the fallback at once: no agent turn, nothing recorded
 *  - resume: the worker runs the live version again and new calls reach the agent
 *  - a keep-live pause: the call live before it keeps the agent; a new call gets the number's transfer fallback
 *  - another agent as the fallback: the live call moves to it (its greeting) and stays up; a new call starts on it
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GREETING } from '../../agents/default-agent.ts';
import { api } from '../helpers/api.ts';
import { deployConcierge } from '../helpers/agent-source.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15550127000';
const CLOSED = 'Sorry, the concierge is away. Goodbye.';
type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let numberId = '';
const open: Array<{ close(): Promise<unknown> | void }> = [];

before(async () => {
  gw = await startTestGateway({ env: { SWITCHBOARD_AGENT_SILENCE_MS: '600000' } });
  open.push({ close: () => gw.stop() });
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' } })).status, 201);
  const n = await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'concierge', consent_policy: 'short', provider: 'twilio' } });
  assert.equal(n.status, 201);
  numberId = (n.body as { id: string }).id;
  assert.equal((await deployConcierge(gw.publicUrl, 'v1', 'rollout=100', { work: tmpDir('sb-pause-') })).status, 201);
  const fb = await api(gw.publicUrl, 'PUT', `/v1/numbers/${numberId}/fallback`, { body: { kind: 'message', message: CLOSED } });
  assert.equal(fb.status, 200, JSON.stringify(fb.body));
});
after(async () => {
  for (const o of open.reverse()) await o.close();
});

const callOf = (p: TwilioPeer) => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: p.callSid })!;
const actions = (p: TwilioPeer) => gw.store.read('default').agent_actions.find({ call_id: callOf(p).id });
const said = (p: TwilioPeer, status = 'succeeded') => actions(p).filter((a) => a.kind === 'say' && a.status === status).map((a) => (a.args as { text: string }).text);
const turnsOf = (p: TwilioPeer) => [...gw.store.events()].filter((e) => e.reducer === 'agent_turn_started' && (e.args as { call_id: string }).call_id === callOf(p).id).length;

async function dial(): Promise<TwilioPeer> {
  const p = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550004444', redirectRetryMs: 5000 });
  open.push({ close: () => p.close() });
  await p.dial();
  return p;
}

test('paused during a live turn: the turn finishes, then the fallback; new calls get it at once; resume brings the agent back', { timeout: 90_000 }, async () => {
  const live = await dial();
  await live.waitFor(() => said(live).includes('Hello from v1.'), 20_000, 'v1 greeted');
  assert.deepEqual(Object.keys(gw.agents.usage('default', 'concierge')), ['v1']);
  live.sendDtmf('1');
  // The key's turn is speaking (its say requested, not yet played out): pause now.
  await live.waitFor(() => said(live, 'requested').includes('v1 key 1.'), 10_000, 'the key turn speaking');
  const paused = await api(gw.publicUrl, 'POST', '/v1/agents/concierge/pause', { body: { reason: 'bad prompt' } });
  assert.equal(paused.status, 200, JSON.stringify(paused.body));
  assert.equal((paused.body as { reason: string }).reason, 'bad prompt');
  await live.waitFor(() => callOf(live).state === 'ended', 20_000, 'the live call ends after its turn');
  assert.ok(said(live).includes('v1 key 1.'), 'the turn running at the pause finished');
  assert.equal(callOf(live).end_reason, 'agent paused');
  await live.waitFor(() => Object.keys(gw.agents.usage('default', 'concierge')).length === 0, 10_000, 'the paused agent\'s worker stops');

  const again = await api(gw.publicUrl, 'POST', '/v1/agents/concierge/pause', { body: {} });
  assert.equal(again.status, 409);
  assert.equal((again.body as { error: { code: string } }).error.code, 'already_paused');
  const listed = await api(gw.publicUrl, 'GET', '/v1/agents');
  const concierge = (listed.body as { agents: Array<{ name: string; paused: { reason: string } | null }> }).agents.find((a) => a.name === 'concierge')!;
  assert.equal(concierge.paused?.reason, 'bad prompt');

  const fresh = await dial();
  await fresh.waitFor(() => callOf(fresh).state === 'ended', 20_000, 'a new call gets the fallback and ends');
  assert.equal(callOf(fresh).end_reason, 'agent paused');
  assert.equal(turnsOf(fresh), 0, 'no agent turn on a paused agent');
  assert.equal(gw.store.read('default').recordings.find({ call_id: callOf(fresh).id }).length, 0, 'nothing recorded');
  const voiced = [...fresh.receivedAudio()].filter((b) => b !== 0xff && b !== 0x7f).length;
  assert.ok(voiced > 8000, `the caller heard the message (${voiced} voiced µ-law bytes)`);
  assert.equal(Object.keys(gw.agents.usage('default', 'concierge')).length, 0, 'the worker was not started for it');

  const resumed = await api(gw.publicUrl, 'POST', '/v1/agents/concierge/resume');
  assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
  assert.ok((resumed.body as { resumed_at: string | null }).resumed_at);
  await live.waitFor(() => Object.keys(gw.agents.usage('default', 'concierge')).includes('v1'), 15_000, 'resume restarts the live version');
  const back = await dial();
  await back.waitFor(() => said(back).includes('Hello from v1.'), 20_000, 'a new call reaches the agent again');
  back.sendDtmf('2');
  await back.waitFor(() => said(back).some((t) => t.startsWith('v1 key')), 10_000, 'and its turns run');
  const rows = gw.store.read('default').agent_pauses.find({ agent: 'concierge' });
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.paused_by, rows[0]!.resumed_by, 'who paused and who resumed are kept');
});

test('a keep-live pause: the live call keeps its agent; a new call gets the number\'s transfer fallback', { timeout: 90_000 }, async () => {
  const live = await dial();
  await live.waitFor(() => said(live).includes('Hello from v1.'), 20_000, 'v1 greeted');
  const fb = await api(gw.publicUrl, 'PUT', `/v1/numbers/${numberId}/fallback`, { body: { kind: 'transfer', target: '+15559991111' } });
  assert.equal(fb.status, 200, JSON.stringify(fb.body));
  const paused = await api(gw.publicUrl, 'POST', '/v1/agents/concierge/pause', { body: { reason: 'maintenance', keep_live: true } });
  assert.equal(paused.status, 200, JSON.stringify(paused.body));

  const fresh = await dial();
  await fresh.waitFor(() => fresh.dialed.length === 1, 30_000, 'the new call is transferred to the fallback target');
  assert.deepEqual(fresh.dialed, ['+15559991111']);
  assert.equal(turnsOf(fresh), 0, 'no agent turn on a paused agent');

  live.sendDtmf('3');
  await live.waitFor(() => said(live).some((t) => t.startsWith('v1 key')), 10_000, 'the kept call is still answered by the agent');
  assert.notEqual(callOf(live).state, 'ended');
  assert.deepEqual(Object.keys(gw.agents.usage('default', 'concierge')), ['v1'], 'the kept call holds its worker');
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/agents/concierge/resume')).status, 200);
});

test('another agent as the fallback: the live call moves to it and stays up; a new call starts on it', { timeout: 90_000 }, async () => {
  const fb = await api(gw.publicUrl, 'PUT', `/v1/numbers/${numberId}/fallback`, { body: { kind: 'agent', target: 'default' } });
  assert.equal(fb.status, 200, JSON.stringify(fb.body));
  const live = await dial();
  await live.waitFor(() => said(live).includes('Hello from v1.'), 20_000, 'v1 greeted');
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/agents/concierge/pause', { body: { reason: 'switch to default' } })).status, 200);
  await live.waitFor(() => said(live).includes(GREETING), 15_000, 'the fallback agent greets the live call');
  live.sendDtmf('4');
  await live.waitFor(() => said(live).includes('You pressed 4.'), 10_000, 'the fallback agent answers its turns');
  assert.notEqual(callOf(live).state, 'ended');
  assert.ok(!said(live).some((t) => t.startsWith('v1 key')), 'the paused agent takes no further turn');

  const fresh = await dial();
  await fresh.waitFor(() => said(fresh).includes(GREETING), 20_000, 'a new call starts on the fallback agent');
  assert.ok(!said(fresh).includes('Hello from v1.'));
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/agents/concierge/resume')).status, 200);
});
