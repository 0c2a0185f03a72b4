/**
 * WebRTC resume after `kill -9`: the real `switchboard start` process is
 * killed during a live softphone call; the browser SDK offers new peer
 * connections with its session token (`?resume=`), the restarted gateway
 * attaches them to the same call row (resuming → live, media epoch 2), the
 * agent carries on (onResume), and the page shows it connected again; its subscription socket resumes from the
 * last seq it saw (`since` → `resumed`, no new snapshot).
 * Runs inside `unshare -n` (helpers/netns.ts), browser and gateway alike.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { launchChromium, micWav, openPhone } from '../helpers/softphone.ts';
import { tmpDir } from '../helpers/tmp.ts';
import type { Browser } from 'playwright-core';

interface Detail {
  call: { id: string; state: string; media_epoch: number; provider: string; end_reason: string | null };
  agent_actions: Array<{ kind: string; args: unknown; status: string }>;
  consents: Array<{ outcome: string }>;
}

let gw: GatewayProcess | null = null;
let browser: Browser | null = null;
after(async () => {
  await browser?.close().catch(() => undefined);
  await gw?.stop();
});

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  test('kill -9 the gateway mid-call: the softphone resumes the same call row on a new peer connection and the agent continues', { timeout: 200_000 }, async () => {
    const port = await freePort();
    const dataDir = tmpDir('sb-wrtc-kill9-');
    const env = { SWITCHBOARD_STT: 'pocketsphinx', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_WEBRTC_DEMO: 'on' };
    gw = await spawnGateway({ port, dataDir, env });
    browser = await launchChromium(micWav([[null, 120]]));
    const { page, problems } = await openPhone(browser, gw.publicUrl);
    // The SDK's subscription socket: after the restart it resumes from the seq it saw (`since`), no new snapshot.
    const sent: Array<Record<string, unknown>> = [];
    const received: Array<Record<string, unknown>> = [];
    page.on('websocket', (ws) => {
      if (!ws.url().includes('/v1/subscribe')) return;
      ws.on('framesent', (f) => sent.push(JSON.parse(String(f.payload)) as Record<string, unknown>));
      ws.on('framereceived', (f) => received.push(JSON.parse(String(f.payload)) as Record<string, unknown>));
    });
    await page.getByRole('button', { name: 'Call' }).click();
    await page.locator('#status', { hasText: 'Connected' }).waitFor({ timeout: 20_000 });
    const calls = await api<{ calls: Array<{ id: string; provider: string }> }>(gw.publicUrl, 'GET', '/v1/calls');
    assert.equal(calls.status, 200);
    const webrtc = calls.body.calls.filter((c) => c.provider === 'webrtc');
    assert.equal(webrtc.length, 1);
    const callId = webrtc[0]!.id;
    const detail = async (): Promise<Detail> => (await api<Detail>(gw!.publicUrl, 'GET', `/v1/calls/${callId}`)).body;
    // Press 1 once the consent prompt is listening (a key before that is not an answer).
    const listening = Date.now() + 20_000;
    while ((await detail()).consents[0]?.outcome !== 'pending') {
      assert.ok(Date.now() < listening, 'the consent prompt started');
      await new Promise((r) => setTimeout(r, 200));
    }
    await page.getByRole('button', { name: 'Key 1' }).click();
    await page.locator('#recording', { hasText: 'Recording: on' }).waitFor({ timeout: 20_000 });
    await page.locator('#transcript .line.agent').first().waitFor({ timeout: 30_000 });
    const before = await detail();
    assert.equal(before.call.media_epoch, 1);
    const actionsBefore = before.agent_actions.length;

    const sentBefore = sent.length;
    const receivedBefore = received.length;
    await gw.kill9();
    await page.locator('#status', { hasText: 'Reconnecting' }).waitFor({ timeout: 45_000 });
    gw = await spawnGateway({ port, dataDir, env });
    await page.locator('#status', { hasText: 'Connected' }).waitFor({ timeout: 60_000 });

    let after: Detail = before;
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      after = await detail();
      if (after.call.media_epoch >= 2 && after.agent_actions.length > actionsBefore && after.agent_actions.at(-1)?.status === 'succeeded') break;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(after.call.id, callId, 'the same call row');
    assert.equal(after.call.media_epoch, 2, 'a second media connection');
    assert.notEqual(after.call.state, 'ended');
    const resumed = after.agent_actions.slice(actionsBefore);
    assert.ok(resumed.some((a) => JSON.stringify(a.args).includes('cut off')), `the agent carried on after the restart: ${JSON.stringify(resumed)}`);
    const again = await api<{ calls: Array<{ provider: string }> }>(gw.publicUrl, 'GET', '/v1/calls');
    assert.equal(again.body.calls.filter((c) => c.provider === 'webrtc').length, 1, 'still one call row');

    // The live transcript came back too (its socket reconnects and resumes), and hang-up ends the call.
    const resubscribed = sent.slice(sentBefore).filter((m) => m.type === 'subscribe' && m.id === 'transcript');
    assert.ok(resubscribed.length > 0 && resubscribed.every((m) => typeof m.since === 'number'), `the SDK resubscribed with since: ${JSON.stringify(resubscribed)}`);
    const resumedAt = Date.now() + 30_000;
    while (!received.slice(receivedBefore).some((m) => m.type === 'resumed' && m.id === 'transcript')) {
      assert.ok(Date.now() < resumedAt, `the transcript subscription resumed: ${JSON.stringify(received.slice(receivedBefore)).slice(0, 800)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(received.slice(receivedBefore).filter((m) => m.type === 'snapshot').length, 0, 'no new snapshot after the restart');
    await page.getByRole('button', { name: 'Hang up' }).click();
    await page.locator('#ended-text', { hasText: 'Call ended' }).waitFor();
    const until2 = Date.now() + 10_000;
    while (Date.now() < until2 && (await detail()).call.state !== 'ended') await new Promise((r) => setTimeout(r, 200));
    const ended = await detail();
    assert.equal(ended.call.state, 'ended');
    assert.equal(ended.call.end_reason, 'webrtc:hangup');
    assert.deepEqual(problems, []);
  });
}
