/**
 * The campaign and do-not-call routes (api/routes/campaigns.ts) and their CLI (cli/campaigns-command.ts) on a
 * running gateway. The campaigns here have a calling window that is closed now (it opens six hours from now, in
 * UTC), so nothing is dialled: what is checked is creation (CSV and JSON, the provider's default pace), the
 * refusals, progress, pause / resume / cancel, permissions and the DNC list.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { api, userToken } from '../helpers/api.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
let gw: Awaited<ReturnType<typeof startTestGateway>>;

/** A window that is closed now: one hour, starting six hours from the current UTC hour. */
function closedWindow(): string {
  const h = (new Date().getUTCHours() + 6) % 24;
  const hh = (x: number): string => String(x % 24).padStart(2, '0');
  return `${hh(h)}:00-${hh(h + 1)}:00`;
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_URL: gw.publicUrl, SWITCHBOARD_TOKEN: ADMIN_TOKEN };
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

async function csvCampaign(query: Record<string, string>, csv: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.publicUrl}/v1/campaigns?${new URLSearchParams(query)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'text/csv' },
    body: csv,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

before(async () => {
  gw = await startTestGateway();
  for (const [number, provider] of [['+15550007001', 'vonage'], ['+15550007002', 'twilio']] as const) {
    const r = await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number, agent: 'default', provider } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
});

after(async () => {
  await gw?.stop();
});

test('a CSV campaign from a Vonage number paces at 3/s by default; a JSON one from Twilio at 1/s; nothing dials outside the window', async () => {
  const window = closedWindow();
  const csv = 'number,timezone,name\nsip:alice@127.0.0.1:9,UTC,Alice\nsip:bob@127.0.0.1:9,,Bob\nsip:alice@127.0.0.1:9,,again\n';
  const a = await csvCampaign({ from: '+15550007001', window, name: 'reminders' }, csv);
  assert.equal(a.status, 201, JSON.stringify(a.body));
  assert.equal(a.body.calls_per_second, 3);
  assert.deepEqual(a.body.progress, { total: 2, finished: 0, answered: 0, dnc: 0, attempts: 0, live: 0 }, 'a number listed twice is one number');
  const b = await api<{ calls_per_second: number; id: string }>(gw.publicUrl, 'POST', '/v1/campaigns', {
    body: { from: '+15550007002', numbers: ['sip:carol@127.0.0.1:9'], window, timezone: 'Europe/Paris', max_concurrent: 2 },
  });
  assert.equal(b.status, 201, JSON.stringify(b.body));
  assert.equal(b.body.calls_per_second, 1);
  await new Promise((r) => setTimeout(r, 500)); // a few runner ticks
  const shown = await api<{ numbers_by_state: Record<string, number>; progress: { attempts: number } }>(gw.publicUrl, 'GET', `/v1/campaigns/${String(a.body.id)}`);
  assert.equal(shown.body.progress.attempts, 0, 'the window is closed: nothing decided');
  assert.equal(shown.body.numbers_by_state.pending, 2);
});

test('refusals: a CSV without a number column, an unknown zone, a bad window, a from that is not ours', async () => {
  const noColumn = await csvCampaign({ from: '+15550007001' }, 'phone\nsip:a@127.0.0.1:9\n');
  assert.equal(noColumn.status, 400);
  assert.match(JSON.stringify(noColumn.body), /line 1: no `number` column/);
  const zone = await api(gw.publicUrl, 'POST', '/v1/campaigns', { body: { from: '+15550007001', numbers: ['sip:a@127.0.0.1:9'], timezone: 'Mars/Base' } });
  assert.equal(zone.status, 400);
  const win = await api(gw.publicUrl, 'POST', '/v1/campaigns', { body: { from: '+15550007001', numbers: ['sip:a@127.0.0.1:9'], window: '25:00-26:00' } });
  assert.equal(win.status, 400);
  const notOurs = await api(gw.publicUrl, 'POST', '/v1/campaigns', { body: { from: '+15559999999', numbers: ['sip:a@127.0.0.1:9'] } });
  assert.equal(notOurs.status, 404);
});

test('numbers are normalised to E.164: the forms of one number are one number; what cannot be is a per-row 400, nothing written', async () => {
  const window = closedWindow();
  const csv = 'number,name\n+1 (555) 010-0021,a\ntel:+1-555-010-0021,again\n0015550100022,b\n555-0100,national\n+1 555 HELP,letters\nsip:h@127.0.0.1:9,sip\n';
  const before = (await api<{ campaigns: unknown[] }>(gw.publicUrl, 'GET', '/v1/campaigns')).body.campaigns.length;
  const refused = await csvCampaign({ from: '+15550007002', window }, csv);
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  const error = refused.body.error as { code: string; message: string; rows: Array<{ row: string; number: string; error: string }> };
  assert.equal(error.code, 'invalid_numbers');
  assert.deepEqual(error.rows.map((r) => [r.row, r.number]), [['line 5', '555-0100'], ['line 6', '+1 555 HELP']]);
  assert.match(error.rows[0]!.error, /no country code/);
  assert.match(error.message, /2 number\(s\) cannot be dialled: line 5 "555-0100": no country code/);
  assert.equal((await api<{ campaigns: unknown[] }>(gw.publicUrl, 'GET', '/v1/campaigns')).body.campaigns.length, before, 'nothing written');

  const ok = await csvCampaign({ from: '+15550007002', window }, csv.split('\n').filter((l) => !/national|letters/.test(l)).join('\n'));
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
  const shown = await api<{ numbers: Array<{ number: string; name: string | null }> }>(gw.publicUrl, 'GET', `/v1/campaigns/${String(ok.body.id)}`);
  assert.deepEqual(shown.body.numbers.map((n) => n.number), ['+15550100021', '+15550100022', 'sip:h@127.0.0.1:9'], 'two forms of one number are called once');
  const json = await api(gw.publicUrl, 'POST', '/v1/campaigns', { body: { from: '+15550007002', numbers: ['+15550100023', 'nope'], window } });
  assert.equal(json.status, 400);
  assert.deepEqual((json.body as { error: { rows: Array<{ row: string }> } }).error.rows.map((r) => r.row), ['numbers[1]']);

  const dnc = await api<{ number: string }>(gw.publicUrl, 'POST', '/v1/dnc', { body: { number: '00 1 (555) 010-0024' } });
  assert.equal(dnc.status, 201, JSON.stringify(dnc.body));
  assert.equal(dnc.body.number, '+15550100024', 'listed in the form campaigns dial');
  assert.equal((await api(gw.publicUrl, 'DELETE', `/v1/dnc/${encodeURIComponent('tel:+1-555-010-0024')}`)).status, 200, 'removed by another form of it');
});

test('pause, resume, cancel; a finished campaign refuses more; an auditor reads but cannot control', async () => {
  const c = await api<{ id: string }>(gw.publicUrl, 'POST', '/v1/campaigns', { body: { from: '+15550007001', numbers: ['sip:d@127.0.0.1:9', 'sip:e@127.0.0.1:9'], window: closedWindow() } });
  assert.equal(c.status, 201);
  const act = (action: string, token?: string) => api<{ state: string }>(gw.publicUrl, 'POST', `/v1/campaigns/${c.body.id}/${action}`, token ? { token } : {});
  assert.equal((await act('pause')).body.state, 'paused');
  assert.equal((await act('resume')).body.state, 'running');
  const auditor = await userToken(gw.publicUrl, 'auditor');
  assert.equal((await act('pause', auditor.token)).status, 403);
  assert.equal((await api(gw.publicUrl, 'GET', `/v1/campaigns/${c.body.id}`, { token: auditor.token })).status, 200);
  assert.equal((await act('cancel')).body.state, 'cancelled');
  const shown = await api<{ numbers_by_state: Record<string, number>; progress: { finished: number } }>(gw.publicUrl, 'GET', `/v1/campaigns/${c.body.id}`);
  assert.equal(shown.body.numbers_by_state.cancelled, 2);
  assert.equal(shown.body.progress.finished, 2);
  assert.equal((await act('resume')).status, 409);
  assert.equal((await api(gw.publicUrl, 'GET', '/v1/campaigns/cmp-nope')).status, 404);
});

test('the do-not-call list over the API and the CLI; campaigns list and show from the CLI', async () => {
  const add = await api(gw.publicUrl, 'POST', '/v1/dnc', { body: { number: 'sip:+15550100009@pbx.example', reason: 'asked' } });
  assert.equal(add.status, 201, JSON.stringify(add.body));
  const cliAdd = await cli(['dnc', 'add', '+15550100010', '--reason', 'complaint']);
  assert.equal(cliAdd.code, 0, cliAdd.stderr);
  const listed = await cli(['dnc', 'list', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const numbers = listed.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { number: string }).number).sort();
  assert.deepEqual(numbers, ['+15550100009', '+15550100010'], 'a SIP URI is listed by its user part');
  const removed = await cli(['dnc', 'remove', '+15550100009']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal((await api(gw.publicUrl, 'DELETE', `/v1/dnc/${encodeURIComponent('+15550100009')}`)).status, 404);

  const created = await cli(['campaigns', 'create', '--from', '+15550007002', '--numbers', 'sip:f@127.0.0.1:9,sip:g@127.0.0.1:9', '--window', closedWindow(), '--cps', '2', '--json']);
  assert.equal(created.code, 0, created.stderr);
  const c = JSON.parse(created.stdout) as { id: string; calls_per_second: number };
  assert.equal(c.calls_per_second, 2);
  const list = await cli(['campaigns', 'list', '--json']);
  assert.ok(list.stdout.split('\n').some((l) => l.includes(c.id)));
  const show = await cli(['campaigns', 'show', c.id]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /sip:f@127\.0\.0\.1:9 {2}pending/);
  const pause = await cli(['campaigns', 'pause', c.id]);
  assert.match(pause.stdout, /paused/);
});

test('the subscription socket watches campaigns: a snapshot, then a delta on pause; the console serves its panel', async () => {
  const c = await api<{ id: string }>(gw.publicUrl, 'POST', '/v1/campaigns', { body: { from: '+15550007001', numbers: ['sip:h@127.0.0.1:9'], window: closedWindow() } });
  const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/v1/subscribe`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const messages: Array<{ type: string; rows?: Array<{ id: string }>; new?: { id: string; state: string } }> = [];
  ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString())));
  await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
  ws.send(JSON.stringify({ type: 'subscribe', id: 's1', table: 'campaigns', filter: { id: c.body.id } }));
  const waitFor = async (ok: () => boolean): Promise<void> => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(ok(), JSON.stringify(messages));
  };
  await waitFor(() => messages.some((m) => m.type === 'snapshot' && m.rows?.[0]?.id === c.body.id));
  await api(gw.publicUrl, 'POST', `/v1/campaigns/${c.body.id}/pause`);
  await waitFor(() => messages.some((m) => m.type === 'delta' && m.new?.state === 'paused'));
  ws.close();
  const panel = await fetch(`${gw.publicUrl}/console/campaigns.js`);
  assert.equal(panel.status, 200);
  assert.match(await panel.text(), /export function campaignsPanel/);
});
