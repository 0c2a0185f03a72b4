/**
 * Agent versions survive kill -9: the real `switchboard start` process runs
 * two live calls pinned to two versions (v1 kept without migrate, v2 live);
 * after kill -9 and a restart on the same data dir both calls resume on
 * their own version (the workers are started again from the stored,
 * content-addressed bundles), and a new call takes the live version.
 * Observed only through the API, as an operator would.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { deployConcierge } from '../helpers/agent-source.ts';
import { freePort, spawnGateway, TWILIO_TOKEN, type GatewayProcess } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15550124000';
/** The concierge re-prompts a silent caller; these calls wait on purpose. */
const QUIET = { SWITCHBOARD_AGENT_SILENCE_MS: '600000' };
let gw: GatewayProcess | null = null;
const peers: TwilioPeer[] = [];
after(async () => {
  for (const p of peers) await p.close();
  await gw?.stop();
});

/** What the agent said on the call from `from`, through the API (admin reads content). */
async function said(base: string, from: string): Promise<string[]> {
  const list = await api<{ calls: Array<{ id: string }> }>(base, 'GET', `/v1/calls?from=${encodeURIComponent(from)}`);
  const id = list.body.calls?.[0]?.id;
  if (!id) return [];
  const detail = await api<{ agent_actions: Array<{ kind: string; status: string; args: { text?: string } | null }> }>(base, 'GET', `/v1/calls/${id}`);
  return (detail.body.agent_actions ?? []).filter((a) => a.kind === 'say' && a.status === 'succeeded').map((a) => a.args?.text ?? '');
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`not met within ${timeoutMs} ms: ${what}`);
}

test('after kill -9, deployed versions and each call\'s pinned version come back from the store', { timeout: 150_000 }, async () => {
  const port = await freePort();
  const dataDir = tmpDir('sb-agents-restart-');
  const work = tmpDir('sb-agents-src-');
  gw = await spawnGateway({ port, dataDir, env: QUIET });
  const base = gw.publicUrl;
  assert.equal((await api(base, 'POST', '/v1/consent-policies', { body: { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' } })).status, 201);
  assert.equal((await api(base, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'concierge', consent_policy: 'short' } })).status, 201);
  assert.equal((await deployConcierge(base, 'v1', 'rollout=100', { work })).status, 201);

  const dial = async (from: string): Promise<TwilioPeer> => {
    const p = new TwilioPeer({ publicUrl: base, authToken: TWILIO_TOKEN, to: NUMBER, from, redirectRetryMs: 30_000 });
    peers.push(p);
    assert.equal((await p.dial()).kind, 'streaming');
    return p;
  };
  const a = await dial('+15550000001');
  await until('A greeted by v1', async () => (await said(base, '+15550000001')).includes('Hello from v1.'));
  assert.equal((await deployConcierge(base, 'v2', 'rollout=100', { work })).status, 201);
  const b = await dial('+15550000002');
  await until('B greeted by v2', async () => (await said(base, '+15550000002')).includes('Hello from v2.'));
  a.sendDtmf('1');
  await until('A still on v1', async () => (await said(base, '+15550000001')).includes('v1 key 1.'));

  await gw.kill9();
  gw = await spawnGateway({ port, dataDir, env: QUIET });
  await a.waitFor(() => a.streams === 2, 30_000, 'A resumed on a new stream');
  await b.waitFor(() => b.streams === 2, 30_000, 'B resumed on a new stream');
  await until('A back on v1', async () => (await said(base, '+15550000001')).includes('Back on v1.'));
  await until('B back on v2', async () => (await said(base, '+15550000002')).includes('Back on v2.'));
  a.sendDtmf('2');
  await until('A answers from v1 with its state (key 2)', async () => (await said(base, '+15550000001')).includes('v1 key 2.'));
  await dial('+15550000003');
  await until('a new call takes v2', async () => (await said(base, '+15550000003')).includes('Hello from v2.'));
  const agents = await api<{ agents: Array<{ name: string; versions: Array<{ version: string; status: string }> }> }>(base, 'GET', '/v1/agents');
  assert.deepEqual(
    agents.body.agents.find((x) => x.name === 'concierge')?.versions.map((v) => [v.version, v.status]),
    [['v1', 'retired'], ['v2', 'live']],
  );
  for (const p of peers) await p.hangup();
});
