/**
 * WebRTC failover through the load balancer (issue 15): the real `switchboard cluster up --nodes 2` (3 nats-server,
 * 2 nodes, HAProxy) and a real Chromium softphone on HAProxy's URL. The call is answered by one node (A); the caller
 * agrees to the recording (key 1) and the agent speaks. A is killed with -9. The SDK offers new peer connections
 * with its session token (`?resume=`) through HAProxy, which sends them to the other node (B): B never saw the
 * session, checks the token with the cluster-wide key, answers with its own ICE candidates, and takes the call once
 * A's lease has run out (SWITCHBOARD_CLUSTER_LEASE_MS is small here). The page shows it connected again, one call
 * row, media epoch 2, owner B; the agent carries on (onResume) and hears a key pressed after the failover (RFC 4733
 * in the browser's RTP to B), and its answer is audible in the page. Hang-up then ends the call on B. Before the
 * kill the call outlives the resume grace on A: B, which holds the call's row but no browser, leaves it alone.
 * Runs inside `unshare -n` (helpers/netns.ts): NATS, the nodes, HAProxy and Chromium alike.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { api } from '../helpers/api.ts';
import { eventually, startClusterUp, type ClusterUp } from '../helpers/cluster-up.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { launchChromium, micWav, openPhone, remoteLevel } from '../helpers/softphone.ts';

const NUMBER = '+15550108001';
const LEASE_MS = 3_000;
/** The WebRTC resume grace: the call lives on A longer than this before A is killed, and B resumes it within it. */
const GRACE_MS = 20_000;

interface Detail {
  call: { id: string; state: string; media_epoch: number; provider: string; owner_node: string | null; end_reason: string | null };
  owner: { node: string; state: string | null } | null;
  agent_actions: Array<{ kind: string; args: unknown; status: string }>;
  consents: Array<{ outcome: string }>;
}

let cluster: ClusterUp | null = null;
let browser: Browser | null = null;
after(async () => {
  await browser?.close().catch(() => undefined);
  await cluster?.stop();
});

if (insidePrivateNetwork(import.meta.filename, 600_000)) {
  test('kill -9 the node of a softphone call: the resume through HAProxy lands on the other node, which takes the call and the agent carries on', { timeout: 540_000 }, async () => {
    cluster = await startClusterUp({ env: { SWITCHBOARD_CLUSTER_LEASE_MS: String(LEASE_MS), SWITCHBOARD_WEBRTC_DEMO: 'off', SWITCHBOARD_WEBRTC_RESUME_GRACE_MS: String(GRACE_MS) } });
    const { info } = cluster;
    const policy = await api(info.http, 'POST', '/v1/consent-policies', { body: { name: 'optin', mode: 'opt-in', disclosure_text: 'This call is recorded. Press 1 to agree.' } });
    assert.equal(policy.status, 201, JSON.stringify(policy.body));
    const number = await api(info.http, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', consent_policy: 'optin', provider: 'webrtc' } });
    assert.equal(number.status, 201, JSON.stringify(number.body));
    for (const n of info.nodes) {
      await eventually(`${n.id} has the number`, 30_000, async () => JSON.stringify((await api(n.http, 'GET', '/v1/numbers')).body).includes(NUMBER));
    }

    browser = await launchChromium(micWav([[null, 240]]));
    const { page, problems } = await openPhone(browser, info.http);
    const answers: Array<{ status: number; call: string | null; sdp: string }> = [];
    page.on('response', (res) => {
      if (!res.url().includes('/webrtc/offer')) return;
      void res.text().then(
        (sdp) => answers.push({ status: res.status(), call: res.headers()['x-switchboard-call'] ?? null, sdp }),
        () => undefined,
      );
    });
    await page.locator('#to').fill(NUMBER);
    await page.getByRole('button', { name: 'Call' }).click();
    await page.locator('#status', { hasText: 'Connected' }).waitFor({ timeout: 30_000 });

    const calls = await api<{ calls: Array<{ id: string; provider: string }> }>(info.http, 'GET', '/v1/calls');
    const webrtc = calls.body.calls.filter((c) => c.provider === 'webrtc');
    assert.equal(webrtc.length, 1);
    const callId = webrtc[0]!.id;
    const detail = async (base: string): Promise<Detail> => (await api<Detail>(base, 'GET', `/v1/calls/${callId}`)).body;
    await eventually('the call has an owner', 20_000, async () => (await detail(info.http)).call.owner_node !== null);
    const ownerId = (await detail(info.http)).call.owner_node!;
    const a = info.nodes.find((n) => n.id === ownerId)!;
    const b = info.nodes.find((n) => n.id !== ownerId)!;
    assert.ok(a && b, `the owner ${ownerId} is one of the nodes`);

    // Consent (key 1 once the prompt listens), then the agent speaks.
    await eventually('the consent prompt listens', 30_000, async () => (await detail(a.http)).consents[0]?.outcome === 'pending');
    await page.getByRole('button', { name: 'Key 1' }).click();
    await page.locator('#recording', { hasText: 'Recording: on' }).waitFor({ timeout: 30_000 });
    await page.locator('#transcript .line.agent').first().waitFor({ timeout: 30_000 });
    const before = await detail(a.http);
    assert.equal(before.call.media_epoch, 1);
    const actionsBefore = before.agent_actions.length;
    const firstAnswer = answers.find((x) => x.status === 201);
    assert.ok(firstAnswer, 'the first offer was answered');

    // B holds the call's row too, with no browser attached there: it must leave a call A owns alone past the grace.
    await new Promise((r) => setTimeout(r, GRACE_MS + 3_000));
    const held = await detail(b.http);
    assert.notEqual(held.call.state, 'ended', `B did not end A's call after the resume grace (${held.call.end_reason})`);
    assert.equal(held.call.owner_node, a.id);

    // kill -9 A: the page notices, and its resume goes through HAProxy to B.
    // Every status the page shows from now on is kept: on a busy machine the whole Reconnecting phase may pass
    // before the test looks, so it asks the page's history rather than the status of the moment.
    await page.evaluate(() => {
      const el = document.querySelector('#status')!;
      const seen: string[] = [];
      (window as unknown as { __status: string[] }).__status = seen;
      new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
    });
    await cluster.killNode(a.id);
    await page.waitForFunction(() => (window as unknown as { __status: string[] }).__status.some((t) => t.includes('Reconnecting')), undefined, { timeout: 60_000 });
    await page.locator('#status', { hasText: 'Connected' }).waitFor({ timeout: 90_000 });

    let now: Detail = before;
    await eventually('B took the call and the agent carried on', 60_000, async () => {
      now = await detail(b.http);
      return now.call.media_epoch >= 2 && now.call.owner_node === b.id && now.agent_actions.slice(actionsBefore).some((x) => JSON.stringify(x.args).includes('cut off') && x.status === 'succeeded');
    });
    assert.equal(now.call.id, callId, 'the same call row');
    assert.equal(now.call.media_epoch, 2, 'a second media connection, on B');
    assert.equal(now.call.owner_node, b.id);
    assert.notEqual(now.call.state, 'ended');
    assert.ok(fs.readFileSync(b.log, 'utf8').split('\n').some((l) => l.includes(callId) && /webrtc call resuming/.test(l)), "B's log shows the resume");
    const again = await api<{ calls: Array<{ provider: string }> }>(info.http, 'GET', '/v1/calls');
    assert.equal(again.body.calls.filter((c) => c.provider === 'webrtc').length, 1, 'still one call row');

    // B answered with its own candidates (its own ICE ports, not A's).
    const resumed = answers.filter((x) => x.status === 201 && x !== firstAnswer);
    assert.ok(resumed.length >= 1, 'a resume was answered');
    const ports = (sdp: string) => new Set([...sdp.matchAll(/^a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host/gim)].map((m) => m[1]));
    const aPorts = ports(firstAnswer.sdp);
    for (const r of resumed) {
      assert.equal(r.call, callId);
      assert.ok([...ports(r.sdp)].every((p) => !aPorts.has(p)), 'the resumed answer carries new candidates');
    }

    // Media both ways on B: a key pressed now (RFC 4733 in the browser's RTP) is answered, and that is heard.
    await page.getByRole('button', { name: 'Key 5' }).click();
    await eventually('B heard key 5', 30_000, async () => (await detail(b.http)).agent_actions.some((x) => JSON.stringify(x.args).includes('pressed 5')));
    let level = 0;
    for (let i = 0; i < 10 && level <= 0.01; i++) level = await remoteLevel(page, 1500);
    assert.ok(level > 0.01, `the agent is audible in the page after the failover (peak ${level})`);

    // The nodes' view: A is lost (its lease ran out), B is alive.
    const nodes = await api<{ nodes: Array<{ id: string; state: string }> }>(b.http, 'GET', '/v1/cluster/nodes');
    assert.equal(nodes.body.nodes.find((n) => n.id === a.id)?.state, 'lost');
    assert.equal(nodes.body.nodes.find((n) => n.id === b.id)?.state, 'alive');

    await page.getByRole('button', { name: 'Hang up' }).click();
    await page.locator('#ended-text', { hasText: 'Call ended' }).waitFor();
    await eventually('the call ended on B', 15_000, async () => (await detail(b.http)).call.state === 'ended');
    assert.equal((await detail(b.http)).call.end_reason, 'webrtc:hangup');
    assert.deepEqual(problems, []);
  });
}
