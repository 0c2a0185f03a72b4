/**
 * Resume after kill -9, the Vonage way: the real `switchboard start` process is
 * killed at several points of one live call; the media socket drops, the
 * Vonage peer POSTs `disconnected` to the connect action's synchronous
 * eventUrl (retrying until the restarted gateway answers), runs the NCCO it
 * gets back, and the same call row goes resuming → active on a new socket,
 * the agent carrying on from its stored turn, with no committed event lost.
 */
import { openStore } from '../helpers/content.ts';
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { speechL16 } from '../helpers/audio-l16.ts';
import { freePort, spawnGateway, VONAGE_SECRET, type GatewayProcess } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { VonagePeer } from '../helpers/vonage-peer.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15557654000';
let gw: GatewayProcess | null = null;
let peer: VonagePeer | null = null;
after(async () => {
  await peer?.close();
  await gw?.stop();
});

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  const who = { tenant: 'default', caller: 'test' };
  resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { tenant: 'default', caller: 'test', id: 'bootstrap:tenant:default' }));
  const p = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'short', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
  resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default', provider: 'vonage', consent_policy_id: p.policy_id }, who));
  store.close();
}

async function committedSeq(g: GatewayProcess): Promise<number> {
  const res = await fetch(`${g.publicUrl}/readyz`);
  return ((await res.json()) as { seq: number }).seq;
}

test('kill -9 the gateway at three points of a live Vonage call: the synchronous event resumes it each time, one call row, nothing committed lost', { timeout: 180_000 }, async () => {
  const port = await freePort();
  const dataDir = tmpDir('sb-vkill9-');
  await seed(dataDir);
  gw = await spawnGateway({ port, dataDir });
  peer = new VonagePeer({ publicUrl: gw.publicUrl, secret: VONAGE_SECRET, to: NUMBER, from: '+15550002222', retryMs: 30_000 });
  const p = peer;
  assert.equal((await p.dial()).kind, 'streaming');

  const points: Array<[string, () => Promise<void>]> = [
    // The short disclosure is ~6 notifies; past 12 the agent's greeting is playing.
    ['while the greeting plays', () => p.waitFor(() => p.notifiesEchoed >= 12, 20_000, 'greeting streaming')],
    [
      'after a caller turn was answered',
      async () => {
        const before = p.receivedBytes;
        await p.play(speechL16('I need to change my address'));
        await p.waitFor(() => p.receivedBytes > before + 16_000, 20_000, 'agent replied');
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
    const received = p.receivedBytes;
    await gw.kill9();
    gw = await spawnGateway({ port, dataDir });
    await p.waitFor(() => p.streams === i + 2, 40_000, `socket ${i + 2} after kill -9 ${label}`);
    await p.waitFor(() => p.receivedBytes > received + 16_000, 20_000, `the agent speaks again after kill -9 ${label}`);
  }
  await p.hangup();
  await new Promise((r) => setTimeout(r, 500));
  await gw.stop();
  gw = null;
  assert.equal(p.protocolErrors.length, 0, p.protocolErrors.join('; '));

  const store = await openStore({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const calls = store.read('default').calls.find();
    assert.equal(calls.length, 1, 'no duplicate call rows');
    const call = calls[0]!;
    assert.equal(call.provider, 'vonage');
    assert.equal(call.state, 'ended');
    assert.equal(call.media_epoch, 4, 'one socket, then three resumed sockets');
    const events = [...store.events()];
    assert.equal(events.filter((e) => e.reducer === 'call_resume_requested' && e.outcome.ok).length, 3);
    const resumed = events.filter((e) => e.reducer === 'call_media_connected' && e.outcome.ok && (e.outcome.result as { resumed: boolean }).resumed);
    assert.equal(resumed.length, 3, 'each new socket resumed the same call');
    assert.ok(store.head.seq >= Math.max(...seqs), 'every event committed before each kill is still there');
    const sayings = store.read('default').agent_actions.find({ call_id: call.id }).map((a) => JSON.stringify(a.args));
    assert.ok(sayings.filter((s) => s.includes('cut off')).length >= 3, 'the agent resumed (and said so) after each kill: ' + JSON.stringify(sayings));
    const ids = store.read('default').agent_actions.find({ call_id: call.id }).map((a) => a.request_id);
    assert.equal(new Set(ids).size, ids.length, 'no action id reused across restarts');
    const legs = store.read('default').legs.find({ call_id: call.id });
    assert.equal(legs.length, 4);
    assert.ok(legs.every((l) => l.state === 'disconnected' && l.provider === 'vonage' && l.sample_rate === 16000));
    const verify = store.verify();
    assert.ok(verify.ok, verify.problems.join('; '));
    assert.ok(store.replay().ok);
  } finally {
    store.close();
  }
});
