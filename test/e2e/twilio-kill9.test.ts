/**
 * Resume after kill -9: the real `switchboard start` process is killed at
 * several points of one live call; the Twilio peer's <Redirect> lands on the
 * restarted gateway, the same call row goes resuming → active on a new stream,
 * the agent carries on from its stored turn, and no committed event is lost.
 */
import { openStore } from '../helpers/content.ts';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { speechUlaw } from '../helpers/audio.ts';
import { freePort, spawnGateway, TWILIO_TOKEN, type GatewayProcess } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15557654321';
let gw: GatewayProcess | null = null;
let peer: TwilioPeer | null = null;
after(async () => {
  await peer?.close();
  await gw?.stop();
});

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const who = { tenant: 'default', caller: 'test' };
    resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { ...who, id: 'bootstrap:tenant:default' }));
    const p = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
    resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  } finally {
    store.close();
  }
}

async function committedSeq(g: GatewayProcess): Promise<number> {
  const res = await fetch(`${g.publicUrl}/readyz`);
  return ((await res.json()) as { seq: number }).seq;
}

test('kill -9 the gateway at three points of a live call: the call resumes each time, one call row, nothing committed lost', { timeout: 180_000 }, async () => {
  const port = await freePort();
  const dataDir = tmpDir('sb-kill9-');
  await seed(dataDir);
  gw = await spawnGateway({ port, dataDir });
  peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550002222', redirectRetryMs: 30_000 });
  const p = peer;
  assert.equal((await p.dial()).kind, 'streaming');

  const points: Array<[string, () => Promise<void>]> = [
    // The short disclosure is ~6 marks; past 12 the agent's greeting is playing.
    ['while the greeting plays', () => p.waitFor(() => p.marksReceived >= 12, 15_000, 'greeting streaming')],
    [
      'after a caller turn was answered',
      async () => {
        const before = p.receivedAudio().length;
        await p.play(speechUlaw('I need to change my address'));
        await p.waitFor(() => p.receivedAudio().length > before + 8000, 15_000, 'agent replied');
      },
    ],
    [
      'right after a DTMF digit',
      async () => {
        p.sendDtmf('3');
        await new Promise((r) => setTimeout(r, 150));
      },
    ],
  ];
  const seqs: number[] = [];
  for (const [i, [label, reach]] of points.entries()) {
    await reach();
    seqs.push(await committedSeq(gw));
    const received = p.receivedAudio().length;
    await gw.kill9();
    gw = await spawnGateway({ port, dataDir });
    await p.waitFor(() => p.streams === i + 2, 30_000, `stream ${i + 2} after kill -9 ${label}`);
    await p.waitFor(() => p.receivedAudio().length > received + 4000, 15_000, `the agent speaks again after kill -9 ${label}`);
  }
  await p.hangup();
  await new Promise((r) => setTimeout(r, 500));
  await gw.stop();
  gw = null;

  const store = await openStore({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const calls = store.read('default').calls.find();
    assert.equal(calls.length, 1, 'no duplicate call rows');
    const call = calls[0]!;
    assert.equal(call.state, 'ended');
    assert.equal(call.media_epoch, 4, 'one stream, then three resumed streams');
    const events = [...store.events()];
    assert.equal(events.filter((e) => e.reducer === 'call_resume_requested' && e.outcome.ok).length, 3);
    const resumedConnects = events.filter((e) => e.reducer === 'call_media_connected' && e.outcome.ok && (e.outcome.result as { resumed: boolean }).resumed);
    assert.equal(resumedConnects.length, 3, 'each new stream resumed the same call');
    assert.ok(store.head.seq >= Math.max(...seqs), 'every event committed before each kill is still there');
    const sayings = store.read('default').agent_actions.find({ call_id: call.id }).map((a) => JSON.stringify(a.args));
    assert.ok(sayings.filter((s) => s.includes('cut off')).length >= 3, 'the agent resumed (and said so) after each kill: ' + JSON.stringify(sayings));
    const turn = store.read('default').agent_state.get(call.id)?.turn ?? 0;
    assert.ok(turn >= 4, `agent turns continued across restarts (turn ${turn})`);
    const ids = store.read('default').agent_actions.find({ call_id: call.id }).map((a) => a.request_id);
    assert.equal(new Set(ids).size, ids.length, 'no action id reused across restarts');
    const legs = store.read('default').legs.find({ call_id: call.id });
    assert.equal(legs.length, 4);
    assert.ok(legs.every((l) => l.state === 'disconnected'));
    const verify = store.verify();
    assert.ok(verify.ok, verify.problems.join('; '));
    assert.ok(store.replay().ok);
  } finally {
    store.close();
  }
});
