/**
 * A browser call on a machine with a real network interface, with the
 * gateway's defaults: inside a private namespace that also has a non-loopback
 * interface (10.77.0.1 on a veth link, helpers/netns.ts), the gateway offers
 * two host candidates (127.0.0.1 from SWITCHBOARD_WEBRTC_HOST_ADDRESSES and
 * 10.77.0.1, gathered from the interface), as `npm start` does on a laptop.
 *
 * Chromium runs as a user's does (no --allow-loopback-in-peer-connection, mDNS
 * host names on) and, in a second test, with the flags the other browser tests
 * use. Each places a call from /phone to the demo agent, consents with key 1
 * (RFC 4733 in the audio: caller → gateway media), and must hear the agent's
 * greeting (gateway → caller media). Before media followed the browser's
 * latest nomination (ingress/webrtc/nomination.ts), both sat on "Connecting…"
 * for 20 s and ended `webrtc: media never connected`.
 *
 * With a STUN server configured (the NAT set-up: full ICE, server-reflexive
 * candidates, served by helpers/stun-server.ts on the interface) the same
 * call connects too; that case passed before the fix as well (the browser
 * nominates once against a full-ICE peer), it guards the configuration.
 *
 * A call whose media cannot connect (the answer's candidates pointed at a port
 * nobody listens on) ends with the reason shown on the page.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { WebrtcLeg } from '../../ingress/webrtc/leg.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { launchChromium, micWav, openPhone, remoteLevel, waitFor } from '../helpers/softphone.ts';
import { startStunServer } from '../helpers/stun-server.ts';

const INTERFACE = '10.77.0.1';

type Gw = Awaited<ReturnType<typeof startTestGateway>>;
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

async function gateway(env: Record<string, string> = {}): Promise<Gw> {
  // No SWITCHBOARD_WEBRTC_HOST_ADDRESSES: the default (127.0.0.1) plus the interfaces werift gathers.
  const gw = await startTestGateway({ env: { SWITCHBOARD_STT: 'pocketsphinx', SWITCHBOARD_TTS: 'espeak', SWITCHBOARD_WEBRTC_DEMO: 'on', ...env } });
  open.push(() => gw.stop());
  return gw;
}

async function browser(privateNamespaceFlags: boolean): Promise<Browser> {
  const b = await launchChromium(micWav([[null, 40]]), { privateNamespaceFlags });
  open.push(() => b.close());
  return b;
}

/** The SDP answers the page receives from POST /webrtc/offer. */
function answers(page: Page): string[] {
  const seen: string[] = [];
  page.on('response', (res) => {
    if (new URL(res.url()).pathname === '/webrtc/offer' && res.status() === 201) void res.text().then((t) => seen.push(t), () => undefined);
  });
  return seen;
}

const hostCandidates = (sdp: string): string[] => [...new Set([...sdp.matchAll(/^a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host/gim)].map((m) => m[1] as string))].sort();

async function callAndHearTheAgent(privateNamespaceFlags: boolean, env: Record<string, string> = {}): Promise<void> {
  const gw = await gateway(env);
  const b = await browser(privateNamespaceFlags);
  const { page, problems } = await openPhone(b, gw.publicUrl);
  const sdps = answers(page);
  await page.getByRole('button', { name: 'Call' }).click();
  await page.locator('#status', { hasText: 'Connected' }).waitFor({ timeout: 30_000 });
  await waitFor(() => sdps.length === 1, 5_000, 'the answer');
  assert.deepEqual(hostCandidates(sdps[0] as string), [INTERFACE, '127.0.0.1'], 'both host candidates were offered');

  const read = () => gw.store.read('default');
  const call = () => read().calls.find({ provider: 'webrtc' })[0];
  await waitFor(() => call()?.consent_id != null && read().consents.get(call()!.consent_id!)?.outcome === 'pending', 20_000, 'consent prompt running');
  await page.getByRole('button', { name: 'Key 1' }).click();
  await page.locator('#recording', { hasText: 'Recording: on' }).waitFor({ timeout: 20_000 });
  assert.equal(read().consents.get(call()!.consent_id!)!.method, 'dtmf', 'the key press crossed the media path');

  await waitFor(() => call()?.state === 'active', 15_000, 'call active');
  await waitFor(() => read().agent_actions.find({ call_id: call()!.id }).length >= 1, 20_000, 'the greeting requested');
  const leg = gw.calls.get(call()!.id)?.leg as WebrtcLeg | undefined;
  await waitFor(() => (leg?.stats.framesOut ?? 0) > 50, 20_000, 'the agent speaking');
  const level = await remoteLevel(page, 3000);
  assert.ok(level > 0.01, `the agent is audible in the browser (peak RMS ${level})`);
  assert.ok(leg && leg.stats.framesIn > 100, `the caller's audio reaches the gateway: ${JSON.stringify(leg?.stats)}`);

  await page.getByRole('button', { name: 'Hang up' }).click();
  await waitFor(() => call()?.state === 'ended', 10_000, 'ended');
  assert.equal(call()!.end_reason, 'webrtc:hangup');
  assert.deepEqual(problems, []);
}

if (insidePrivateNetwork(import.meta.filename, 300_000, { interfaceAddress: `${INTERFACE}/24` })) {
  test('stock Chromium (no loopback flag, mDNS on), gateway defaults, a real interface: the call connects and media flows both ways', { timeout: 120_000 }, async () => {
    await callAndHearTheAgent(false);
  });

  test('Chromium with the private-namespace flags, gateway defaults, a real interface: the call connects and media flows both ways', { timeout: 120_000 }, async () => {
    await callAndHearTheAgent(true);
  });

  test('STUN configured (SWITCHBOARD_WEBRTC_ICE_SERVERS, full ICE on both sides), stock Chromium: the call connects and media flows both ways', { timeout: 120_000 }, async () => {
    const stun = await startStunServer(INTERFACE);
    open.push(() => stun.close());
    await callAndHearTheAgent(false, { SWITCHBOARD_WEBRTC_ICE_SERVERS: stun.url });
    assert.ok(stun.answered > 0, 'the gateway and the browser gathered through the STUN server');
  });

  test('media that cannot connect: the call ends with the reason, and the page shows it', { timeout: 120_000 }, async () => {
    const gw = await gateway();
    const b = await browser(false);
    const { page } = await openPhone(b, gw.publicUrl);
    // The answer's candidates point at the discard port: the browser's checks reach nobody.
    await page.route('**/webrtc/offer*', async (route) => {
      const res = await route.fetch();
      const body = (await res.text()).replace(/^(a=candidate:\S+ \d+ udp \d+ \S+ )\d+/gim, '$19');
      await route.fulfill({ response: res, body });
    });
    await page.getByRole('button', { name: 'Call' }).click();
    await page.locator('#ended-text', { hasText: 'media never connected' }).waitFor({ timeout: 60_000 });
    const row = gw.store.read('default').calls.find({ provider: 'webrtc' })[0];
    assert.equal(row?.state, 'ended');
    assert.equal(row?.end_reason, 'webrtc: media never connected');
  });
}
