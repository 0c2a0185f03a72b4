/**
 * Pausing agents through the API and the CLI (an in-process gateway; the real `switchboard` binary as a child):
 * pause / resume answers and their refusals, the audited rows, `GET /v1/agents` and `switchboard agents` showing
 * the pause, fallbacks per number and for the tenant, and the registry stopping the paused agent's worker and
 * starting its live version again on resume.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { api, userToken } from '../helpers/api.ts';
import { deployConcierge } from '../helpers/agent-source.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
let gw: Awaited<ReturnType<typeof startTestGateway>>;
let numberId = '';

function cli(args: string[], token = ADMIN_TOKEN): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_URL: gw.publicUrl, SWITCHBOARD_TOKEN: token };
  delete env.SWITCHBOARD_DATA_DIR;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  gw = await startTestGateway();
  const n = await api<{ id: string }>(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: '+15550128000', agent: 'concierge' } });
  assert.equal(n.status, 201);
  numberId = n.body.id;
  const d = await deployConcierge(gw.publicUrl, 'v1', 'rollout=100', { work: tmpDir('sb-pause-api-') });
  assert.equal(d.status, 201, JSON.stringify(d.body));
});
after(async () => {
  await gw?.stop();
});

const workers = () => Object.keys(gw.agents.usage('default', 'concierge'));

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('CLI: agents pause / resume, refusals as exit 1 with the code; `agents` marks the paused one; the worker stops and restarts', { timeout: 60_000 }, async () => {
  assert.deepEqual(workers(), ['v1']);
  const paused = await cli(['agents', 'pause', 'concierge', '--reason', 'wrong hours', '--keep-live']);
  assert.equal(paused.code, 0, paused.stderr);
  assert.equal(paused.stdout.trim(), 'concierge paused (live calls keep it): wrong hours');
  await until(() => workers().length === 0, 10_000, 'the idle worker of the paused agent stops');

  const twice = await cli(['agents', 'pause', 'concierge']);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /already_paused|already paused/);
  const unknown = await cli(['agents', 'pause', 'nobody']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /agent_not_found|no agent nobody/);

  const list = await cli(['agents']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /concierge \(paused\)/);
  const json = await cli(['agents', '--json']);
  const row = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; paused: { reason: string; keep_live: boolean } | null }).find((a) => a.name === 'concierge')!;
  assert.deepEqual({ reason: row.paused?.reason, keep_live: row.paused?.keep_live }, { reason: 'wrong hours', keep_live: true });

  const resumed = await cli(['agents', 'resume', 'concierge', '--json']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const r = JSON.parse(resumed.stdout) as { agent: string; resumed_by: string; resumed_at: string };
  assert.equal(r.agent, 'concierge');
  assert.ok(r.resumed_at && r.resumed_by);
  await until(() => workers().includes('v1'), 15_000, 'resume starts the live version\'s worker');
  const notPaused = await cli(['agents', 'resume', 'concierge']);
  assert.equal(notPaused.code, 1);
  assert.match(notPaused.stderr, /not_paused|not paused/);
});

test('API: a developer pauses and resumes (audited rows name them); compliance may not; pauses are listed', async () => {
  const dev = await userToken(gw.publicUrl, 'developer');
  const compliance = await userToken(gw.publicUrl, 'compliance');
  const refused = await api(gw.publicUrl, 'POST', '/v1/agents/concierge/pause', { token: compliance.token, body: {} });
  assert.equal(refused.status, 403);
  const p = await api<{ id: string; paused_by: string; keep_live: boolean; resumed_at: string | null }>(gw.publicUrl, 'POST', '/v1/agents/concierge/pause', { token: dev.token, body: { reason: 'testing' } });
  assert.equal(p.status, 200, JSON.stringify(p.body));
  assert.equal(p.body.paused_by, `user:${dev.userId}`);
  assert.equal(p.body.keep_live, false);
  assert.equal(p.body.resumed_at, null);
  const bad = await api(gw.publicUrl, 'POST', '/v1/agents/concierge/pause', { token: dev.token, body: { keep_live: 'yes' } });
  assert.equal(bad.status, 400);
  const r = await api<{ id: string; resumed_by: string }>(gw.publicUrl, 'POST', '/v1/agents/concierge/resume', { token: dev.token });
  assert.equal(r.status, 200);
  assert.equal(r.body.id, p.body.id);
  assert.equal(r.body.resumed_by, `user:${dev.userId}`);
  const all = await api<{ pauses: Array<{ id: string; reason: string }> }>(gw.publicUrl, 'GET', '/v1/agents/pauses', { token: compliance.token });
  assert.equal(all.status, 200);
  assert.ok(all.body.pauses.some((x) => x.id === p.body.id && x.reason === 'testing'));
  const events = [...gw.store.events()].filter((e) => e.reducer === 'agent_paused' || e.reducer === 'agent_resumed');
  assert.ok(events.some((e) => e.caller === `user:${dev.userId}` && e.reducer === 'agent_paused'), 'the log names who paused');
});

test('API: fallbacks per number and for the tenant; a target is required where one is meant; listed with the number', async () => {
  const missing = await api(gw.publicUrl, 'PUT', `/v1/numbers/${numberId}/fallback`, { body: { kind: 'transfer' } });
  assert.equal(missing.status, 422);
  assert.equal((missing.body as { error: { code: string } }).error.code, 'invalid_fallback');
  assert.equal((await api(gw.publicUrl, 'PUT', '/v1/numbers/num_nope/fallback', { body: { kind: 'message' } })).status, 404);
  assert.equal((await api(gw.publicUrl, 'PUT', `/v1/numbers/${numberId}/fallback`, { body: { kind: 'agent', target: 'frontdesk' } })).status, 200);
  assert.equal((await api(gw.publicUrl, 'PUT', '/v1/fallback', { body: { kind: 'message', message: 'Closed today.' } })).status, 200);
  const list = await api<{ default_message: string; fallbacks: Array<{ number: string | null; kind: string; target: string | null; message: string | null }> }>(gw.publicUrl, 'GET', '/v1/fallbacks');
  assert.equal(list.status, 200);
  assert.ok(list.body.default_message.length > 0);
  assert.deepEqual(
    list.body.fallbacks.map((f) => [f.number, f.kind, f.target, f.message]).sort(),
    [['+15550128000', 'agent', 'frontdesk', null], [null, 'message', null, 'Closed today.']].sort(),
  );
});

test('CLI: numbers fallback sets a number\'s fallback and the tenant default; one kind at a time', async () => {
  const none = await cli(['numbers', 'fallback', '+15550128000']);
  assert.equal(none.code, 2, none.stderr);
  const t = await cli(['numbers', 'fallback', '+15550128000', '--transfer', '+15559992222']);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.stdout.trim(), '+15550128000: while its agent is paused, calls get transfer to +15559992222');
  const d = await cli(['numbers', 'fallback', 'default', '--message']);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /tenant default: .*message \(the default\) and hang-up/);
  const unknown = await cli(['numbers', 'fallback', '+15550000001', '--agent', 'x']);
  assert.equal(unknown.code, 2);
  const rows = gw.store.read('default').number_fallbacks.find({});
  assert.deepEqual(rows.find((r) => r.number_id === numberId)?.target, '+15559992222');
  assert.equal(rows.find((r) => r.number_id === null)?.kind, 'message');
});
