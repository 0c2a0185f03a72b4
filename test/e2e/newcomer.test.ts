/**
 * A newcomer's first ten minutes, as the README tells them, on a machine with a real network interface: a fresh
 * directory, `npm start` (here `switchboard start`, in a terminal, with no SWITCHBOARD_* setting at all — default
 * ports, development profile, the demo number), then a stock Chromium (no test-only flags, mDNS on): open `/`, land on
 * `/phone`, call the demo, consent on the keypad, hear the agent, hang up, follow "Open this call in the console", sign
 * in with the token the start printed, and open that call's recording.
 *
 * Every step of it broke once: media never connected with two host candidates, the printed token did not open the
 * console, `/` was a JSON 404, the console link opened the list. Inside `unshare -n` (fixed default ports are ours
 * alone there) with a second interface, 10.77.0.1, as a laptop has.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { hasScript, startProcess, type StartedProcess } from '../helpers/first-start.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { launchChromium, micWav, remoteLevel, waitFor } from '../helpers/softphone.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BASE = 'http://127.0.0.1:8080';
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

interface CallView {
  id: string;
  state: string;
  recordings?: Array<{ status: string }>;
}

async function apiGet<T>(token: string, path: string): Promise<T> {
  const res = await fetch(`${BASE}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

if (insidePrivateNetwork(import.meta.filename, 400_000, { interfaceAddress: '10.77.0.1/24' })) {
  test('fresh directory, npm start, stock Chromium: / → /phone, call the demo, keypad consent, hear the agent, then the console with the printed token opens the call and its recording', { timeout: 240_000 }, async () => {
    const cwd = tmpDir('sb-newcomer-');
    // What a shell has; nothing of ours.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: cwd, LANG: 'C.UTF-8', TERM: 'xterm' };
    const tty = hasScript();
    const gw: StartedProcess = await startProcess(env, { tty, cwd, baseUrl: BASE, timeoutMs: 120_000 });
    open.push(() => gw.stop());
    const printed = tty ? gw.stdout() : gw.stderr();
    const token = /(sbk_[A-Za-z0-9_-]+)/.exec(printed)?.[1];
    assert.ok(token, `the start printed the admin token:\n${printed}`);
    if (tty) assert.match(printed, /Console:\s+http:\/\/\S+\/console/);

    const browser: Browser = await launchChromium(micWav([[null, 60]]), { privateNamespaceFlags: false });
    open.push(() => browser.close());
    const context = await browser.newContext({ permissions: ['microphone'] });
    const page = await context.newPage();
    page.setDefaultTimeout(30_000);
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));

    // The README's first URL.
    await page.goto(`${BASE}/`);
    assert.equal(new URL(page.url()).pathname, '/phone', '/ leads to the softphone');

    await page.getByRole('button', { name: 'Call' }).click();
    await page.locator('#status', { hasText: 'Connected' }).waitFor({ timeout: 60_000 });
    await page.locator('#consent-hint', { hasText: 'press 1' }).waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Key 1' }).click();
    await page.locator('#recording', { hasText: 'Recording: on' }).waitFor({ timeout: 30_000 });

    // The agent answers: its voice reaches the browser.
    let level = 0;
    const until = Date.now() + 60_000;
    while (level <= 0.01 && Date.now() < until) level = await remoteLevel(page, 2000);
    assert.ok(level > 0.01, `the agent is audible in the browser (peak RMS ${level})`);

    await page.getByRole('button', { name: 'Hang up' }).click();
    await page.locator('#ended-text', { hasText: 'Call ended' }).waitFor();
    const { calls } = await apiGet<{ calls: CallView[] }>(token, '/v1/calls');
    const call = calls[0];
    assert.ok(call, 'the call is listed');
    let recorded = false;
    const bound = Date.now() + 60_000;
    while (!recorded && Date.now() < bound) {
      const detail = await apiGet<CallView>(token, `/v1/calls/${call.id}?purpose=${encodeURIComponent('waiting for the recording (test)')}`);
      recorded = (detail.recordings ?? []).some((r) => r.status === 'finalized');
      if (!recorded) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(recorded, 'the recording is finalized');

    // The console, from the phone's link, signed in with what the start printed.
    await page.getByRole('link', { name: 'Open this call in the console' }).click();
    await page.waitForURL(`${BASE}/console#/calls/${call.id}`);
    await page.getByText('Sign in with an API token').click();
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    const dialog = page.getByRole('dialog', { name: 'Purpose of access' });
    await dialog.waitFor();
    await dialog.getByLabel('Purpose').fill('My first call');
    await dialog.getByRole('button', { name: 'Continue' }).click();
    await page.locator('#detail-body').getByText(call.id, { exact: true }).first().waitFor();
    await page.getByRole('link', { name: 'Download recording' }).waitFor();
    const audio = page.locator('audio[aria-label="Call recording"]');
    await audio.waitFor({ state: 'attached' });
    const wav = await page.evaluate(async (src) => {
      const res = await fetch(src);
      const bytes = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, type: res.headers.get('content-type'), head: String.fromCharCode(...bytes.slice(0, 4)), size: bytes.length };
    }, (await audio.getAttribute('src')) ?? '');
    assert.equal(wav.status, 200);
    assert.match(wav.type ?? '', /audio\/(wav|x-wav|wave)/);
    assert.equal(wav.head, 'RIFF');
    assert.ok(wav.size > 8000, `a recording with audio in it (${wav.size} bytes)`);
    assert.deepEqual(problems, []);
  });
}
