/**
 * Agent behaviour set by the gateway's configuration, under live Twilio
 * calls: `onSilence` after SWITCHBOARD_AGENT_SILENCE_MS (a key resets the
 * clock; a second silence hangs up), and HTTP tools declared in
 * SWITCHBOARD_TOOLS_FILE taking precedence over the agent's own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
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

test('an HTTP tool declared in SWITCHBOARD_TOOLS_FILE replaces the agent\'s own, idempotently (one execution across the crash-retry)', { timeout: 60_000 }, async () => {
  const hits: Array<{ key: string | undefined; body: string; auth: string | undefined }> = [];
  const crm = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hits.push({ key: req.headers['idempotency-key'] as string | undefined, body, auth: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ receipt: 'CRM-1' }));
    });
  });
  await new Promise<void>((r) => crm.listen(0, '127.0.0.1', r));
  open.push({ close: () => new Promise((r) => crm.close(r)) });
  const work = tmpDir('sb-tools-');
  const file = path.join(work, 'tools.json');
  const url = `http://127.0.0.1:${(crm.address() as { port: number }).port}/charge`;
  fs.writeFileSync(file, JSON.stringify({ concierge: { charge: { url, headers: { authorization: 'Bearer crm-secret' } } } }));
  const gw = await startTestGateway({ env: { SWITCHBOARD_TOOLS_FILE: file, SWITCHBOARD_AGENT_SILENCE_MS: '600000' } });
  open.push({ close: () => gw.stop() });
  const NUMBER = '+15550128000';
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' } })).status, 201);
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'concierge', consent_policy: 'short' } })).status, 201);
  // The agent's code declares `charge` against an address nothing listens on: only the configured one can answer.
  assert.equal((await deployConcierge(gw.publicUrl, 'v1', 'rollout=100', { work, toolUrl: 'http://127.0.0.1:9/nothing' })).status, 201);
  const p = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550008889', redirectRetryMs: 5000 });
  open.push({ close: () => p.close() });
  await p.dial();
  const call = () => gw.store.read('default').calls.findOne({ provider: 'twilio', provider_call_id: p.callSid })!;
  const said = () => gw.store.read('default').agent_actions.find({ call_id: call().id }).filter((a) => a.kind === 'say').map((a) => (a.args as { text: string }).text);
  await p.waitFor(() => said().includes('Hello from v1.'), 15_000, 'greeted');
  p.sendDtmf('8');
  await p.waitFor(() => said().includes('v1 key 1.'), 10_000, 'the tool turn answered (after its crash and retry)');
  assert.equal(hits.length, 1, 'executed once');
  assert.equal(hits[0]!.auth, 'Bearer crm-secret');
  assert.match(hits[0]!.key ?? '', /^tool:\d+:charge:[0-9a-f]{32}$/);
  assert.deepEqual(JSON.parse(hits[0]!.body).args, { amount: 5 });
  await p.waitFor(() => gw.store.read('default').agent_state.get(call().id)?.state.receipt === 'CRM-1', 5_000, 'the tool result is in the saved state');
  await p.hangup();
});

test('a malformed SWITCHBOARD_TOOLS_FILE stops the start with a message naming the file and the field', async () => {
  const work = tmpDir('sb-tools-bad-');
  const file = path.join(work, 'tools.json');
  fs.writeFileSync(file, JSON.stringify({ concierge: { charge: { url: 'ftp://nope' } } }));
  await assert.rejects(startTestGateway({ env: { SWITCHBOARD_TOOLS_FILE: file } }), (err: Error) => err.message.includes(file) && /concierge\.charge\.url/.test(err.message));
});
