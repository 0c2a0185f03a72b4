/**
 * Content retention (README "Erasable content"): under a policy of 0 retention days, the next sweeps after a call
 * ends purge its recording media (`recording_purged`) and then erase its content (`call_content_erased`, kind
 * `retention`, by `system:retention`: the call's key destroyed). Metadata and proof remain: the call row, the
 * recording row with its sha256, every event; `verify` and `replay` pass; the call's words are nowhere in the data
 * dir. Each step waits for the state it needs, nothing for a duration.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { agent_action_requested, consent_policy_created, number_added, transcript_appended } from '../../schema/reducers.ts';
import { Store } from '../../store/index.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15553338888';
const SAID = 'marzipanlighthouse';
const NOTE = 'kestrelorchard';

test('retention 0 days: the next sweeps purge media and content; metadata and proof remain', { timeout: 120_000 }, async (t) => {
  const gw = await startTestGateway({ env: { SWITCHBOARD_RETENTION_SWEEP_MS: '200' } });
  let stopped = false;
  t.after(() => (stopped ? undefined : gw.stop()));
  const who = { tenant: 'default', caller: 'system:test' };
  const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'zero', mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 8000, retries: 0, retention_days: 0 }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550008888' });
  t.after(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const read = () => gw.store.read('default');
  const call = () => read().calls.findOne({ provider_call_id: peer.callSid });
  await peer.waitFor(() => call()?.consent_id != null, 8000, 'consent started');
  peer.sendDtmf('1');
  await peer.waitFor(() => call()?.state === 'active', 8000, 'consent granted');
  const callId = call()!.id;
  resultOf(await gw.store.submit(transcript_appended, { call_id: callId, channel: 'caller', start_ms: 0, end_ms: 400, text: `I said ${SAID}`, provider: 'test' }, who));
  resultOf(await gw.store.submit(agent_action_requested, { call_id: callId, kind: 'note', request_id: 'test:note:1', args: { text: NOTE } }, who));
  await peer.hangup();
  await peer.waitFor(() => read().content_erasures.get(callId) !== undefined, 60_000, 'content erased by retention');
  const rec = read().recordings.find({ call_id: callId })[0]!;
  assert.equal(rec.status, 'purged');
  assert.match(rec.sha256 ?? '', /^[0-9a-f]{64}$/, 'the hash of what existed stays');
  const erasure = read().content_erasures.get(callId)!;
  assert.equal(erasure.kind, 'retention');
  assert.equal(erasure.erased_by, 'system:retention');
  assert.ok(erasure.keys.some((k: string) => k.startsWith('ck_')), 'the content key is named');
  assert.equal(read().calls.get(callId)?.state, 'ended', 'the call row stays');
  await gw.stop();
  stopped = true;
  for (const s of [SAID, NOTE]) assert.equal(spawnSync('grep', ['-r', '-a', '-i', '-l', s, gw.dataDir]).status, 1, `${s} is nowhere in the data dir`);
  const store = Store.open({ dataDir: gw.dataDir, schema });
  t.after(() => store.close());
  const kinds = [...store.events()].filter((e) => e.outcome.ok && (e.reducer === 'recording_purged' || e.reducer === 'call_content_erased')).map((e) => e.reducer);
  assert.deepEqual(kinds, ['recording_purged', 'call_content_erased'], 'media first, then content');
  assert.ok(store.verify().ok && store.replay().ok);
});
