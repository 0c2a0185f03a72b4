/**
 * What a caller sees on the softphone (/phone), in headless Chromium against
 * a gateway inside a private network namespace (helpers/netns.ts), as
 * webrtc.test.ts runs it:
 *   - a call whose media never connects says why on the page (the end reason
 *     the gateway recorded, `webrtc: media never connected`), not a bare
 *     "Call ended";
 *   - while consent is pending the page shows what to do ("say yes or press
 *     1"), and stops once the caller has answered;
 *   - "Open this call in the console" opens that call: the link is the
 *     console's address for it, and following it (sign in, give a purpose)
 *     shows that call.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { api } from '../helpers/api.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { launchChromium, micWav, openPhone, waitFor } from '../helpers/softphone.ts';

type Gw = Awaited<ReturnType<typeof startTestGateway>>;
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

async function gateway(): Promise<Gw> {
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_WEBRTC_DEMO: 'on' } });
  open.push(() => gw.stop());
  return gw;
}

async function browser(seconds: number): Promise<Browser> {
  const b = await launchChromium(micWav([[null, seconds]]));
  open.push(() => b.close());
  return b;
}

/** Every ICE candidate (and the m-line's default) in an SDP pointed at the discard port: no path can carry media. */
function unreachable(sdp: string): string {
  return sdp
    .replace(/^(a=candidate:\S+ \d+ \S+ \d+ \S+ )\d+( typ )/gm, '$19$2')
    .replace(/^(m=audio )\d+/m, '$19');
}

/** Both directions of the offer/answer exchange made unusable for media, as a blocking firewall would. */
async function blockMedia(page: Page): Promise<void> {
  await page.route('**/webrtc/offer**', async (route) => {
    const res = await route.fetch({ postData: unreachable(route.request().postData() ?? '') });
    await route.fulfill({ response: res, body: res.status() === 201 ? unreachable(await res.text()) : await res.body() });
  });
}

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  test('a call whose media never connects says why on the page', { timeout: 120_000 }, async () => {
    const gw = await gateway();
    const b = await browser(60);
    const { page, problems } = await openPhone(b, gw.publicUrl);
    await blockMedia(page);
    await page.getByRole('button', { name: 'Call' }).click();
    const read = () => gw.store.read('default');
    const call = () => read().calls.find({ provider: 'webrtc' })[0];
    await waitFor(() => call() !== undefined, 15_000, 'call row');
    await page.locator('#ended-text', { hasText: 'Call ended' }).waitFor({ timeout: 60_000 });
    assert.equal(call()!.end_reason, 'webrtc: media never connected');
    const reason = page.locator('#ended-reason');
    await reason.filter({ hasText: 'could not connect' }).waitFor({ timeout: 10_000 });
    assert.ok(await reason.isVisible());
    assert.match((await reason.textContent()) ?? '', /media never connected/);
    assert.equal(await page.locator('#status').isVisible(), false, 'not left on "Connecting…"');
    assert.deepEqual(problems, []);
  });

  test('consent pending: the page says "say yes or press 1"; pressing 1 grants it; the console link opens that call', { timeout: 150_000 }, async () => {
    const gw = await gateway();
    const email = 'ann.compliance@softphone.example.com';
    const password = 'correct horse battery staple';
    assert.equal((await api(gw.publicUrl, 'POST', '/v1/users', { body: { email, role: 'compliance', password } })).status, 201);
    const b = await browser(60);
    const { page, problems } = await openPhone(b, gw.publicUrl);
    const hint = page.locator('#consent-hint');
    await page.getByRole('button', { name: 'Call' }).click();
    await page.locator('#status', { hasText: 'Connected' }).waitFor({ timeout: 20_000 });
    const read = () => gw.store.read('default');
    const call = () => read().calls.find({ provider: 'webrtc' })[0];
    const consent = () => (call()?.consent_id ? read().consents.get(call()!.consent_id!) : undefined);
    await waitFor(() => consent()?.outcome === 'pending', 20_000, 'consent prompt running');

    // While it is pending, the page tells the caller how to answer.
    await hint.filter({ hasText: 'say yes or press 1' }).waitFor({ timeout: 15_000 });
    assert.ok(await hint.isVisible());
    assert.equal(consent()?.outcome, 'pending');

    // Once answered (key 1), the instruction goes and recording is on.
    await page.getByRole('button', { name: 'Key 1' }).click();
    await page.locator('#recording', { hasText: 'Recording: on' }).waitFor({ timeout: 20_000 });
    await hint.waitFor({ state: 'hidden' });
    assert.equal(consent()?.outcome, 'granted');
    const callId = call()!.id;

    await page.getByRole('button', { name: 'Hang up' }).click();
    await page.locator('#ended-text', { hasText: 'Call ended' }).waitFor();
    assert.equal(await page.locator('#ended-reason').isVisible(), false, 'a hang-up by the caller needs no explanation');
    const link = page.getByRole('link', { name: 'Open this call in the console' });
    assert.equal(await link.getAttribute('href'), `/console#/calls/${callId}`);

    // Following it: sign in, give the purpose, and the console shows this call.
    await link.click();
    await page.waitForURL(`${gw.publicUrl}/console#/calls/${callId}`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const dialog = page.getByRole('dialog', { name: 'Purpose of access' });
    await dialog.waitFor();
    await dialog.getByLabel('Purpose').fill('Checking my own test call');
    await dialog.getByRole('button', { name: 'Continue' }).click();
    await page.locator('#detail-body').getByText(callId, { exact: true }).first().waitFor();
    assert.equal(await page.locator('#detail').isVisible(), true);
    assert.deepEqual(problems, []);
  });
}
