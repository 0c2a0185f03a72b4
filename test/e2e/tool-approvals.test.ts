/**
 * Tool authorisation under a live Twilio call (issue 25): a deployed agent asks the fake LLM what to do on each key,
 * and the LLM's answer makes it call `refund`, an HTTP tool that declares `requires: 'approval'`. The turn waits and
 * the caller hears the filler; a supervisor approves through the API and the tool runs once; a denial and a timeout
 * reach the agent as refusals it speaks about; hanging up while waiting cancels the request.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { api, userToken } from '../helpers/api.ts';
import { startFakeLlm } from '../helpers/fake-llm.ts';
import { ADMIN_TOKEN, startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import WebSocket from 'ws';

const open: Array<{ close(): Promise<unknown> | void }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

function cashierSource(llmUrl: string, toolUrl: string): string {
  return `
import { defineAgent, isToolRefusal } from 'switchboard/agent';
import { chat } from 'switchboard/llm';
export default defineAgent({
  name: 'cashier',
  tools: { refund: { requires: 'approval', http: { url: ${JSON.stringify(toolUrl)} } } },
  async onStart(ctx) { await ctx.say('Cashier here.'); },
  async onDtmf(ctx, digit) {
    let text = '';
    for await (const t of chat({ baseUrl: ${JSON.stringify(llmUrl)}, apiKey: 'test-key', model: 'fake', messages: [{ role: 'user', content: 'key ' + digit }] })) text += t;
    const m = /^CALL (\\w+) (.*)$/.exec(text.trim());
    if (!m) return void (await ctx.say('Nothing to do.'));
    try {
      const r = await ctx.tool(m[1], JSON.parse(m[2]));
      await ctx.say('Refund ' + r.refund + ' done.');
    } catch (err) {
      if (!isToolRefusal(err)) throw err;
      await ctx.say('Refund refused: ' + err.refusal + (err.reason ? ', ' + err.reason : '') + '.');
    }
  },
});`;
}

test('an approval tool waits for a supervisor during a live Twilio call: approved runs once, denied and timed out are refusals, a hang-up cancels', { timeout: 120_000 }, async () => {
  const hits: Array<{ key: string | undefined; body: string }> = [];
  const tool = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hits.push({ key: req.headers['idempotency-key'] as string | undefined, body });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ refund: `R-${hits.length}` }));
    });
  });
  await new Promise<void>((r) => tool.listen(0, '127.0.0.1', r));
  open.push({ close: () => new Promise((r) => tool.close(r)) });
  const llm = await startFakeLlm({ reply: (messages) => `CALL refund {"amount": ${Number(/key (\d)/.exec(messages.at(-1)?.content ?? '')?.[1] ?? 0) * 10}}` });
  open.push({ close: () => llm.close() });

  const gw = await startTestGateway({ env: { SWITCHBOARD_TOOL_APPROVAL_TIMEOUT_MS: '4000', SWITCHBOARD_AGENT_SILENCE_MS: '600000' } });
  open.push({ close: () => gw.stop() });
  const NUMBER = '+15550129000';
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' } })).status, 201);
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'cashier', consent_policy: 'short' } })).status, 201);
  const work = tmpDir('sb-approvals-');
  const file = path.join(work, 'cashier.ts');
  fs.writeFileSync(file, cashierSource(llm.url, `http://127.0.0.1:${(tool.address() as { port: number }).port}/refund`));
  const deployed = await fetch(`${gw.publicUrl}/v1/agents/cashier/deploy?rollout=100`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' },
    body: (await bundleAgent(file)).code,
  });
  assert.equal(deployed.status, 201, await deployed.text());
  const supervisor = await userToken(gw.publicUrl, 'compliance');
  const developer = await userToken(gw.publicUrl, 'developer');

  // Supervisors watch the pending requests over the subscription socket; a developer is refused the table.
  const live = new Map<string, { tool: string; args: unknown }>();
  const socketErrors: string[] = [];
  const watch = (token: string, onMessage: (m: { type: string; op?: string; old?: { id: string } | null; new?: { id: string; tool: string; args: unknown } | null; code?: string }) => void) => {
    const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/v1/subscribe`, { headers: { authorization: `Bearer ${token}` } });
    open.push({ close: () => ws.close() });
    ws.on('message', (d) => onMessage(JSON.parse(d.toString())));
    return new Promise<void>((r) => ws.once('open', () => (ws.send(JSON.stringify({ type: 'subscribe', id: 'approvals', table: 'tool_approvals', filter: { status: 'pending' } })), r())));
  };
  await watch(supervisor.token, (m) => {
    if (m.type !== 'delta') return;
    if (m.old) live.delete(m.old.id);
    if (m.new) live.set(m.new.id, m.new);
  });
  await watch(developer.token, (m) => void (m.type === 'error' && socketErrors.push(m.code ?? '')));

  const p = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550008890', redirectRetryMs: 5000 });
  open.push({ close: () => p.close() });
  await p.dial();
  const view = () => gw.store.read('default');
  const call = () => view().calls.findOne({ provider: 'twilio', provider_call_id: p.callSid })!;
  const says = () => view().agent_actions.find({ call_id: call().id }).filter((a) => a.kind === 'say');
  const said = () => says().map((a) => (a.args as { text: string }).text);
  const pending = () => view().tool_approvals.find({ call_id: call().id, status: 'pending' });
  const decide = (id: string, decision: 'approve' | 'deny', token: string, reason?: string) =>
    api<{ status?: string; error?: { code: string } }>(gw.publicUrl, 'POST', `/v1/tool-approvals/${id}/${decision}`, { token, body: reason ? { reason } : {} });
  await p.waitFor(() => said().includes('Cashier here.'), 15_000, 'greeted');

  // 1. Approved: the turn waits (the caller hears the filler), the supervisor approves, the tool runs once.
  p.sendDtmf('1');
  await p.waitFor(() => pending().length === 1, 10_000, 'a pending approval');
  const first = pending()[0]!;
  assert.deepEqual([first.tool, first.args, first.agent], ['refund', { amount: 10 }, 'cashier']);
  const listed = await api<{ tool_approvals: Array<{ id: string; call_id: string; args: unknown }> }>(gw.publicUrl, 'GET', '/v1/tool-approvals?status=pending', { token: supervisor.token });
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.tool_approvals.map((a) => [a.id, a.call_id]), [[first.id, call().id]]);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/tool-approvals', { token: developer.token })).status, 403, 'a developer may not see requests');
  await p.waitFor(() => live.has(first.id), 5_000, 'the request arrived over the subscription socket');
  assert.deepEqual(live.get(first.id)?.args, { amount: 10 });
  assert.deepEqual(socketErrors, ['forbidden']);
  assert.equal((await decide(first.id, 'approve', developer.token)).status, 403, 'nor decide them');
  await p.waitFor(() => says().some((a) => (a.args as { text: string }).text === 'One moment please.' && a.status === 'succeeded'), 10_000, 'the filler played');
  const filler = says().find((a) => (a.args as { text: string }).text === 'One moment please.')!;
  assert.ok(((filler.result as { heard_ms?: number }).heard_ms ?? 0) > 0, 'the caller heard the filler');
  assert.equal(hits.length, 0, 'the tool waits for the approval');
  const approved = await decide(first.id, 'approve', supervisor.token, 'known customer');
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  assert.equal(approved.body.status, 'approved');
  const twice = await decide(first.id, 'approve', supervisor.token);
  assert.deepEqual([twice.status, twice.body.error?.code], [409, 'approval_decided']);
  await p.waitFor(() => said().includes('Refund R-1 done.'), 10_000, 'the agent continued with the result');
  assert.equal(live.size, 0, 'the decided request left the pending subscription');
  assert.equal(hits.length, 1, 'executed once');
  assert.match(hits[0]!.key ?? '', /^tool:\d+:refund:[0-9a-f]{32}$/);
  const row = view().tool_approvals.get(first.id)!;
  assert.deepEqual([row.status, row.decided_by, row.reason], ['approved', `user:${supervisor.userId}`, 'known customer']);

  // 2. Denied: the agent hears why; the tool does not run.
  p.sendDtmf('2');
  await p.waitFor(() => pending().length === 1, 10_000, 'a second pending approval');
  assert.equal((await decide(pending()[0]!.id, 'deny', supervisor.token, 'over the limit')).status, 200);
  await p.waitFor(() => said().includes('Refund refused: denied, over the limit.'), 10_000, 'the denial reached the agent');

  // 3. Nobody decides: after SWITCHBOARD_TOOL_APPROVAL_TIMEOUT_MS the agent gets a timeout refusal.
  p.sendDtmf('3');
  await p.waitFor(() => pending().length === 1, 10_000, 'a third pending approval');
  const third = pending()[0]!.id;
  await p.waitFor(() => said().includes('Refund refused: timeout.'), 15_000, 'the timeout reached the agent');
  assert.equal(view().tool_approvals.get(third)?.status, 'expired');
  assert.equal((await decide(third, 'approve', supervisor.token)).status, 409, 'too late to approve');
  assert.equal(hits.length, 1, 'still one execution');
  const refusals = view().agent_actions.find({ call_id: call().id }).filter((a) => a.kind === 'tool' && a.status === 'failed').map((a) => (a.result as { refused?: string }).refused);
  assert.deepEqual(refusals, ['denied', 'timeout']);

  // 4. The caller hangs up while a request waits: the request is cancelled.
  p.sendDtmf('4');
  await p.waitFor(() => pending().length === 1, 10_000, 'a fourth pending approval');
  const fourth = pending()[0]!.id;
  await p.hangup();
  await p.waitFor(() => view().tool_approvals.get(fourth)?.status === 'cancelled', 10_000, 'cancelled by the hang-up');
  assert.equal(hits.length, 1);
});
