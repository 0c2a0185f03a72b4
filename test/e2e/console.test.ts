/**
 * The compliance console (`GET /console`) driven for real by headless Chromium
 * through playwright-core, against an in-process gateway: sign in with the
 * session cookie, the live badge over WS /v1/subscribe, filters and transcript
 * search, a call's detail with a purpose asked first, the recording in an
 * <audio> element, the transcript, a legal hold, the evidence pack, the access
 * log — checked both on screen and in the store. What a user sees: the list
 * gives each call's duration and id; a call's actions (download, evidence,
 * legal hold) come first, above a readable timeline whose JSON stays folded
 * until asked for; the access log names readers by e-mail; a call has its own
 * address (`/console#/calls/ID`) that opens it after sign-in. Also: a wrong
 * password shows the server's message, an auditor gets no hold button, and the
 * admin token signs in through "Sign in with an API token".
 *
 * Chromium is Debian's `chromium` (scripts/ensure-deps.sh installs it);
 * SWITCHBOARD_CHROMIUM overrides its path.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { CONSOLE_CSP } from '../../api/console.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { api, userToken } from '../helpers/api.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/chromium.ts';
import { finishedCall, type FinishedCall } from '../helpers/call-fixture.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { BOOTSTRAP_EMAIL } from '../../api/auth/bootstrap.ts';
import { resultOf } from '../helpers/store.ts';
import { call_ended, call_received, transcript_accessed } from '../../schema/reducers.ts';

const PASSWORD = 'correct horse battery staple';
const PURPOSE = 'Complaint C-2291: caller disputes an appointment change';
const HOSTILE = '<img src=x id=pwned> & <script>window.__pwned = 1</script>';

type Gw = Awaited<ReturnType<typeof startTestGateway>>;
let gw: Gw;
let browser: Browser;
let wanted: FinishedCall;
let other: FinishedCall;
const users: Record<'compliance' | 'auditor', { id: string; email: string }> = {} as never;
const contexts: BrowserContext[] = [];

before(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run "bash scripts/ensure-deps.sh" (installs Debian's chromium) or set SWITCHBOARD_CHROMIUM`);
  }
  gw = await startTestGateway();
  for (const role of ['compliance', 'auditor'] as const) {
    const email = `${role}@console.example.com`;
    const r = await api<{ id: string }>(gw.publicUrl, 'POST', '/v1/users', { body: { email, role, password: PASSWORD } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    users[role] = { id: r.body.id, email };
  }
  const blobs = new FsBlobStore(gw.dataDir);
  const master = loadOrCreateMasterKey(gw.dataDir);
  wanted = await finishedCall(gw.store, blobs, {
    tenant: 'default',
    master,
    from: '+15550001111',
    transcript: [
      { channel: 'agent', start_ms: 0, end_ms: 1800, text: 'Thank you for calling, how can I help?' },
      { channel: 'caller', start_ms: 2000, end_ms: 4200, text: 'I would like to change my appointment' },
      { channel: 'agent', start_ms: 4500, end_ms: 6000, text: HOSTILE },
    ],
  });
  other = await finishedCall(gw.store, blobs, {
    tenant: 'default',
    master,
    from: '+15550009999',
    transcript: [{ channel: 'caller', start_ms: 0, end_ms: 2000, text: 'a billing question about a refund' }],
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], timeout: 30_000 });
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await gw?.stop();
});

/** A fresh browser profile on the console, collecting page errors and CSP refusals. */
async function openConsole(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  const res = await page.goto(`${gw.publicUrl}/console`);
  assert.equal(res?.status(), 200);
  return { page, problems };
}

async function signIn(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Opens a call from the list, giving the purpose when asked. */
async function openCallFromList(page: Page, from: string, purpose: string | null): Promise<void> {
  await page.locator('#calls-body tr', { hasText: from }).getByRole('button', { name: /^Open call/ }).click();
  if (purpose !== null) {
    const dialog = page.getByRole('dialog', { name: 'Purpose of access' });
    await dialog.waitFor();
    await dialog.getByLabel('Purpose').fill(purpose);
    await dialog.getByRole('button', { name: 'Continue' }).click();
  }
  await page.locator('#detail-h', { hasText: `Call from ${from}` }).waitFor();
}

test('the console is served from the gateway with a strict CSP and no third-party assets', async () => {
  for (const [path, type] of [['/console', 'text/html'], ['/console/app.js', 'text/javascript'], ['/console/style.css', 'text/css']] as const) {
    const res = await fetch(gw.publicUrl + path);
    assert.equal(res.status, 200, path);
    assert.ok(res.headers.get('content-type')?.startsWith(type), `${path}: ${res.headers.get('content-type')}`);
    assert.equal(res.headers.get('content-security-policy'), CONSOLE_CSP);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    const body = await res.text();
    assert.doesNotMatch(body, /https?:\/\/(?!www\.w3\.org)/, `${path} loads nothing from elsewhere`);
    assert.doesNotMatch(body, /\.innerHTML\s*=|insertAdjacentHTML|document\.write/, `${path} renders no HTML from strings`);
  }
});

test('compliance: sign in, live badge, search a transcript, listen, read, hold, export; every access logged with the purpose', { timeout: 120_000 }, async () => {
  const { page, problems } = await openConsole();
  await signIn(page, users.compliance.email, PASSWORD);
  await page.locator('#who', { hasText: users.compliance.email }).waitFor();

  // Both finished calls are listed, newest first, each with its id and its duration (answered → ended).
  const rows = page.locator('#calls-body tr');
  await assert.doesNotReject(rows.nth(1).waitFor());
  assert.equal(await rows.count(), 2);
  assert.match((await rows.nth(0).textContent()) ?? '', /\+15550009999/);
  const head = await page.locator('#calls-table thead th').allTextContents();
  for (const [i, call] of [other, wanted].entries()) {
    const row = gw.store.read('default').calls.get(call.callId)!;
    const cells = await rows.nth(i).locator('td').allTextContents();
    assert.equal(cells[head.indexOf('Call id')], call.callId);
    const s = Math.round((row.ended_at! - row.answered_at!) / 1000);
    assert.equal(cells[head.indexOf('Duration')], `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`);
  }

  // The live badge follows WS /v1/subscribe: snapshot, then deltas.
  const live = page.locator('#live');
  await live.filter({ hasText: 'Live: 0 active calls' }).waitFor();
  const who = { tenant: 'default', caller: 'system:test' };
  const { call_id: liveId } = resultOf<{ call_id: string }>(
    await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CAlive0001', from: '+15550004444', to: '+15550002222', agent: 'receptionist' }, who),
  );
  await live.filter({ hasText: 'Live: 1 active call' }).waitFor();
  resultOf(await gw.store.submit(call_ended, { call_id: liveId, reason: 'caller_hangup' }, who));
  await live.filter({ hasText: 'Live: 0 active calls' }).waitFor();

  // Transcript search narrows the list to the call that said it.
  await page.getByLabel('Transcript search').fill('appointment');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.locator('#calls-status', { hasText: '1 call shown' }).waitFor();
  assert.equal(await rows.count(), 1);
  assert.match((await rows.nth(0).textContent()) ?? '', /\+15550001111/);

  // Opening it asks for a purpose first; then the transcript, the audio and the rest load, at the call's own address.
  const recordingResponse = page.waitForResponse((r) => r.url().includes(`/v1/calls/${wanted.callId}/recording`));
  await openCallFromList(page, '+15550001111', PURPOSE);
  assert.equal(new URL(page.url()).hash, `#/calls/${wanted.callId}`);
  const transcript = page.locator('#transcript');
  await transcript.getByText('I would like to change my appointment').waitFor();
  // Hostile text is shown as text, never parsed as markup.
  await transcript.getByText(HOSTILE).waitFor();
  assert.equal(await page.locator('#pwned').count(), 0);
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);

  const audio = page.locator('audio');
  assert.equal(await audio.getAttribute('src'), `/v1/calls/${wanted.callId}/recording?format=wav&purpose=${encodeURIComponent(PURPOSE)}`);
  const rec = await recordingResponse;
  assert.ok([200, 206].includes(rec.status()), `recording answered ${rec.status()}`);
  assert.equal(rec.headers()['content-type'], 'audio/wav');
  await page.waitForFunction(() => {
    const a = document.querySelector('audio');
    return !!a && (a.readyState >= 1 || a.error !== null);
  });
  const media = await audio.evaluate((a: HTMLAudioElement) => ({ readyState: a.readyState, duration: a.duration, error: a.error?.code ?? null }));
  assert.ok(media.readyState >= 1, `audio element did not load metadata: ${JSON.stringify(media)}`);
  assert.ok(Math.abs(media.duration - 2) < 0.1, `duration ${media.duration}`);

  // Consent with its evidence, agent actions and the timeline are on the page.
  const detail = page.locator('#detail-body');
  await detail.getByRole('region', { name: 'Consent' }).getByText('{"at_ms":2100,"digit":"1"}', { exact: true }).waitFor();
  await detail.getByRole('region', { name: 'Agent actions' }).getByText('{"name":"file_reason","reason":"appointment"}', { exact: true }).waitFor();

  // The actions come first: above the timeline, on the first screen, without scrolling.
  const actionsBar = detail.getByRole('region', { name: 'Actions', exact: true });
  const timeline = detail.getByRole('region', { name: 'Timeline' });
  for (const name of ['Download recording', 'Download evidence pack']) await actionsBar.getByRole('link', { name }).waitFor();
  await actionsBar.getByRole('button', { name: 'Place legal hold' }).waitFor();
  const [aBox, tBox] = [await actionsBar.boundingBox(), await timeline.boundingBox()];
  assert.ok(aBox && tBox && aBox.y + aBox.height <= tBox.y, `actions ${JSON.stringify(aBox)} above the timeline ${JSON.stringify(tBox)}`);
  assert.ok(aBox.y + aBox.height <= page.viewportSize()!.height, `actions on the first screen: ${JSON.stringify(aBox)}`);
  assert.equal(await actionsBar.getByRole('link', { name: 'Download recording' }).getAttribute('href'), `/v1/calls/${wanted.callId}/recording?format=wav&purpose=${encodeURIComponent(PURPOSE)}`);

  // The timeline reads as sentences; each event's JSON is folded until its toggle is opened.
  const finalized = timeline.getByRole('listitem').filter({ hasText: 'Recording finalized (wav, 0:02)' });
  await finalized.waitFor();
  await timeline.getByRole('listitem').filter({ hasText: 'Consent granted by dtmf' }).waitFor();
  await timeline.getByRole('listitem').filter({ hasText: 'Call ended: caller_hangup' }).waitFor();
  const raw = finalized.locator('code.json');
  assert.equal(await raw.isVisible(), false, 'the JSON is hidden until asked for');
  assert.equal(await timeline.getByText(/"duration_ms"/).filter({ visible: true }).count(), 0, 'no raw JSON on screen');
  await finalized.getByText(/as recorded$/).click();
  await raw.waitFor({ state: 'visible' });
  assert.equal((JSON.parse((await raw.textContent())!) as { detail: { duration_ms: number } }).detail.duration_ms, 2000);

  // Legal hold: button → PUT /v1/recordings/:id/hold → the store's row.
  assert.equal(gw.store.read('default').recordings.get(wanted.recordingId)?.legal_hold, false);
  await page.getByRole('button', { name: 'Place legal hold' }).click();
  await page.getByRole('button', { name: 'Release legal hold' }).waitFor();
  await page.locator('#detail-status', { hasText: 'Legal hold placed' }).waitFor();
  assert.equal(gw.store.read('default').recordings.get(wanted.recordingId)?.legal_hold, true);

  // The evidence pack downloads (a zip) through the session cookie.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download evidence pack' }).click()]);
  assert.equal(download.suggestedFilename(), `evidence-${wanted.callId}.zip`);
  const zip = fs.readFileSync((await download.path())!);
  assert.equal(zip.subarray(0, 2).toString('latin1'), 'PK');

  // Someone added after this page signed in reads the call too, and the caller's softphone read its own transcript.
  const late = await userToken(gw.publicUrl, 'auditor', undefined, 'late.auditor@console.example.com');
  assert.equal((await api(gw.publicUrl, 'GET', `/v1/calls/${wanted.callId}/transcript?format=txt&purpose=late%20audit`, { token: late.token })).status, 200);
  resultOf(
    await gw.store.submit(
      transcript_accessed,
      { call_id: wanted.callId, detail: 'live transcript_segments (softphone)', purpose: 'the caller follows their own call', remote: null },
      { tenant: 'default', caller: 'webrtc:wrtc_console_test' },
    ),
  );

  // The access log view names every reader by e-mail (never a user id), with the purpose given.
  await page.getByRole('button', { name: 'Show access log for this call' }).click();
  const accessRows = page.locator('#access-body tr');
  await accessRows.first().waitFor();
  const accessTexts = await accessRows.allTextContents();
  const userIds = gw.store.read('default').users.find({}).map((u) => u.id);
  for (const text of accessTexts) {
    for (const id of userIds) assert.ok(!text.includes(id), `a user id on screen: ${text}`);
    assert.doesNotMatch(text, /webrtc:/, text);
  }
  const mine = accessTexts.filter((t) => t.includes(users.compliance.email));
  assert.ok(mine.length >= 3, accessTexts.join('\n'));
  for (const text of mine) assert.ok(text.includes(PURPOSE), text);
  assert.ok(accessTexts.some((t) => t.includes(late.email) && t.includes('late audit')), accessTexts.join('\n'));
  assert.ok(accessTexts.some((t) => t.includes('the caller (softphone)')), accessTexts.join('\n'));
  // The API joins the e-mail (tenant-scoped): the console needs no user list for it.
  const apiLog = await api<{ entries: Array<{ user_id: string; user_email: string | null }> }>(gw.publicUrl, 'GET', `/v1/access-log?call_id=${wanted.callId}`, { token: late.token });
  assert.ok(apiLog.body.entries.some((e) => e.user_id === late.userId && e.user_email === late.email));
  assert.ok(apiLog.body.entries.some((e) => e.user_id === 'webrtc:wrtc_console_test' && e.user_email === null));

  // …and so does the store: every content access, each with the purpose given.
  const logged = gw.store.read('default').access_log.find({ user_id: users.compliance.id });
  assert.ok(logged.length >= 3);
  const actions = new Set(logged.map((r) => r.action));
  for (const a of ['transcript_accessed', 'recording_accessed', 'evidence_exported'] as const) assert.ok(actions.has(a), `no ${a} in ${[...actions].join(', ')}`);
  for (const row of logged) {
    assert.equal(row.reason, PURPOSE, `${row.action} ${row.detail}`);
    assert.equal(row.call_id, wanted.callId);
  }
  assert.ok(logged.some((r) => r.action === 'transcript_accessed' && r.detail === 'json'), 'the transcript was fetched as JSON');
  assert.equal(gw.store.read('default').access_log.find({ call_id: other.callId }).length, 0, 'the other call was never opened');

  // The purpose is kept for the tab: opening a call again does not ask.
  await page.getByRole('button', { name: 'Back to calls' }).click();
  await page.locator('#calls-body tr', { hasText: '+15550001111' }).getByRole('button', { name: /^Open call/ }).click();
  await page.locator('#detail-h', { hasText: 'Call from +15550001111' }).waitFor();
  assert.equal(await page.getByRole('dialog').count(), 0);

  // Sign out revokes the session and forgets the purpose.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#signin-error', { hasText: 'You have signed out.' }).waitFor();
  assert.equal(await page.evaluate(async () => (await fetch('/v1/auth/me')).status), 401);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.deepEqual(problems, []);
});

test('a wrong password shows the server message; an auditor reads content but gets no hold button', { timeout: 60_000 }, async () => {
  const { page, problems } = await openConsole();
  await signIn(page, users.auditor.email, 'not the password at all');
  await page.locator('#signin-error', { hasText: 'wrong email or password' }).waitFor();
  assert.equal(await page.locator('#app').isVisible(), false);

  await signIn(page, users.auditor.email, PASSWORD);
  await page.locator('#who', { hasText: `${users.auditor.email} (auditor` }).waitFor();
  await page.locator('#calls-body tr').nth(1).waitFor();
  await openCallFromList(page, '+15550001111', 'Quarterly audit sample Q4');
  await page.locator('#transcript').getByText('I would like to change my appointment').waitFor();
  await page.getByText('Your role (auditor) cannot place or release legal holds.').waitFor();
  const holdButtons = page.getByRole('button', { name: /legal hold/i });
  for (let i = 0; i < (await holdButtons.count()); i++) assert.equal(await holdButtons.nth(i).isEnabled(), false);
  // The hold state is shown, not changeable.
  const held = gw.store.read('default').recordings.get(wanted.recordingId)?.legal_hold;
  assert.equal(await page.locator('.hold').first().textContent(), held ? 'on' : 'off');
  await page.getByRole('link', { name: 'Download evidence pack' }).waitFor();
  const logged = gw.store.read('default').access_log.find({ user_id: users.auditor.id });
  assert.ok(logged.length >= 2 && logged.every((r) => r.reason === 'Quarterly audit sample Q4'));
  assert.deepEqual(problems, []);
});

test("a call's address (/console#/calls/ID) opens that call once signed in; Back returns to the list", { timeout: 60_000 }, async () => {
  const { page, problems } = await openConsole();
  await page.goto(`${gw.publicUrl}/console#/calls/${other.callId}`);
  await signIn(page, users.auditor.email, PASSWORD);
  const dialog = page.getByRole('dialog', { name: 'Purpose of access' });
  await dialog.waitFor();
  await dialog.getByLabel('Purpose').fill('Refund complaint R-77');
  await dialog.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#detail-h', { hasText: 'Call from +15550009999' }).waitFor();
  await page.locator('#detail-body').getByText(other.callId, { exact: true }).first().waitFor();
  assert.ok(gw.store.read('default').access_log.find({ call_id: other.callId, user_id: users.auditor.id }).some((r) => r.reason === 'Refund complaint R-77'));
  await page.goBack();
  await page.locator('#calls').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#detail').isVisible(), false);
  assert.deepEqual(problems, []);
});

test('"Sign in with an API token": a wrong token is refused on the form, the admin token opens the console', { timeout: 60_000 }, async () => {
  const { page, problems } = await openConsole();
  await page.getByText('Sign in with an API token').click();
  const field = page.getByLabel('API token');
  await field.fill('sbk_not-a-real-token-0123456789abcdefgh');
  await page.getByRole('button', { name: 'Sign in with token' }).click();
  await page.locator('#signin-token-error', { hasText: 'That token is not valid' }).waitFor();
  assert.equal(await page.locator('#app').isVisible(), false);

  await field.fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in with token' }).click();
  await page.locator('#who', { hasText: `${BOOTSTRAP_EMAIL} (admin` }).waitFor();
  await page.locator('#calls-body tr').nth(1).waitFor();
  assert.equal(await field.inputValue(), '', 'the page keeps no copy of the token');
  const cookies = await page.context().cookies();
  assert.ok(cookies.some((c) => c.name === 'sb_session' && c.httpOnly && c.value !== ADMIN_TOKEN), 'an HttpOnly session of its own');
  assert.deepEqual(problems, []);
});

test('the Agents panel: a developer pauses an agent with a reason and resumes it; compliance sees the pause but no control', { timeout: 60_000 }, async () => {
  assert.equal((await api(gw.publicUrl, 'POST', '/v1/numbers', { body: { number: '+15550004242', agent: 'frontdesk' } })).status, 201);
  const dev = await api<{ id: string }>(gw.publicUrl, 'POST', '/v1/users', { body: { email: 'dev@console.example.com', role: 'developer', password: PASSWORD } });
  assert.equal(dev.status, 201);
  const { page, problems } = await openConsole();
  await signIn(page, 'dev@console.example.com', PASSWORD);
  const row = page.locator('#agents-body tr[data-agent="frontdesk"]');
  await row.getByText('serving').waitFor();
  await row.getByLabel('Why pause frontdesk').fill('wrong opening hours');
  await row.getByRole('button', { name: 'Pause' }).click();
  await row.getByText('paused', { exact: true }).waitFor();
  await row.getByText(/wrong opening hours/).waitFor();
  const pause = gw.store.read('default').agent_pauses.find({ agent: 'frontdesk' })[0]!;
  assert.deepEqual({ by: pause.paused_by, reason: pause.reason, keep_live: pause.keep_live, open: pause.resumed_at === null }, { by: `user:${dev.body.id}`, reason: 'wrong opening hours', keep_live: false, open: true });

  const other = await openConsole();
  await signIn(other.page, users.compliance.email, PASSWORD);
  const seen = other.page.locator('#agents-body tr[data-agent="frontdesk"]');
  await seen.getByText('paused', { exact: true }).waitFor();
  assert.equal(await seen.getByRole('button').count(), 0, 'compliance may not pause or resume');

  await row.getByRole('button', { name: 'Resume' }).click();
  await row.getByText('serving').waitFor();
  assert.notEqual(gw.store.read('default').agent_pauses.get(pause.id)?.resumed_at, null);
  assert.deepEqual([...problems, ...other.problems], []);
});
