/**
 * The retention sweeper as the gateway runs it (README "Consent, recording, transcripts": media past
 * `retention_until` is purged unless on legal hold, writing `recording_purged`; the row and its hash stay).
 *
 * Two real Twilio calls are recorded under a policy that keeps recordings 1 day; one recording is put on legal
 * hold. The gateway is stopped and `switchboard start` runs again over the same data dir three days later — its
 * clock moved ahead by a preload in the child process (test/helpers/clock-ahead.mjs), nothing in the gateway —
 * with `SWITCHBOARD_RETENTION_SWEEP_MS=200`. The test waits (through the API) until the sweeper has purged the
 * first recording, then checks the store and the disk: media gone, the row with its sha256 kept, one
 * `recording_purged` by `system:retention`; the held recording and its media untouched. Nothing waits on a
 * wall-clock duration: each step waits for the state it needs.
 */
import { openStore } from '../helpers/content.ts';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { schema } from '../../schema/index.ts';
import { api } from '../helpers/api.ts';
import { freePort, spawnGateway, startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added, recording_hold_set } from '../../schema/reducers.ts';

const NUMBER = '+15553335555';
const DAY_MS = 86_400_000;
const PRELOAD = path.join(import.meta.dirname, '..', 'helpers', 'clock-ahead.mjs');
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

/** One recorded call (DTMF 1 grants consent, the agent greets, the caller hangs up); returns its recording id. */
async function recordedCall(gw: Gw, t: { after(fn: () => unknown): void }): Promise<string> {
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550005555' });
  t.after(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const read = () => gw.store.read('default');
  const call = () => read().calls.findOne({ provider_call_id: peer.callSid });
  await peer.waitFor(() => call()?.consent_id != null, 8000, 'consent started');
  peer.sendDtmf('1');
  await peer.waitFor(() => read().agent_actions.find({ call_id: call()!.id, status: 'succeeded' }).length >= 1, 15_000, 'the agent greeted');
  await peer.hangup();
  await peer.waitFor(() => read().recordings.find({ call_id: call()!.id })[0]?.status === 'finalized', 20_000, 'recording finalized');
  return read().recordings.find({ call_id: call()!.id })[0]!.id;
}

test('the gateway’s retention sweeper purges media past retention_until (row and sha256 kept, recording_purged written) and leaves a held recording alone', { timeout: 150_000 }, async (t) => {
  const gw = await startTestGateway();
  t.after(() => gw.stop());
  const who = { tenant: 'default', caller: 'system:test' };
  const p = resultOf<{ policy_id: string }>(
    await gw.store.submit(consent_policy_created, { name: 'short', mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 8000, retries: 0, retention_days: 1 }, who),
  );
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  const due = await recordedCall(gw, t);
  const held = await recordedCall(gw, t);
  resultOf(await gw.store.submit(recording_hold_set, { recording_id: held, hold: true }, who));
  const rows = gw.store.read('default').recordings;
  const before = { due: rows.get(due)!, held: rows.get(held)! };
  assert.ok(before.due.retention_until! <= before.due.started_at! + DAY_MS + 60_000, 'kept one day');
  const blobs = new FsBlobStore(gw.dataDir);
  const duePath = blobs.pathOf(before.due.uri!);
  const heldPath = blobs.pathOf(before.held.uri!);
  assert.ok(fs.existsSync(duePath) && fs.existsSync(heldPath));
  await gw.stop();

  // Three days later, sweeping every 200 ms.
  const later = await spawnGateway({
    port: await freePort(),
    dataDir: gw.dataDir,
    env: { NODE_OPTIONS: `--import ${PRELOAD}`, TEST_CLOCK_AHEAD_MS: String(3 * DAY_MS), SWITCHBOARD_RETENTION_SWEEP_MS: '200' },
  });
  t.after(() => later.stop());
  const callOf = (await api<{ call_id: string }>(later.publicUrl, 'GET', `/v1/calls/${before.due.call_id}`)).status;
  assert.equal(callOf, 200);
  const end = Date.now() + 30_000; // the sweep runs every 200 ms; the default, 60 s, would not make it
  for (;;) {
    const r = await api<{ recordings: Array<{ id: string; status: string }> }>(later.publicUrl, 'GET', `/v1/calls/${before.due.call_id}`);
    if (r.body.recordings?.find((x) => x.id === due)?.status === 'purged') break;
    assert.ok(Date.now() < end, `the sweeper did not purge ${due}:\n${later.logs.slice(-20).join('\n')}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  await later.stop();

  const store = await openStore({ dataDir: gw.dataDir, schema });
  t.after(() => store.close());
  const after = { due: store.read('default').recordings.get(due)!, held: store.read('default').recordings.get(held)! };
  assert.equal(after.due.status, 'purged');
  assert.equal(after.due.uri, null);
  assert.ok(after.due.purged_at !== null && after.due.purged_at > before.due.retention_until!, 'purged after its retention ended');
  assert.equal(after.due.sha256, before.due.sha256, 'the hash of what existed stays');
  assert.equal(fs.existsSync(duePath), false, 'the media is gone from disk');
  const purges = [...store.events()].filter((e) => e.reducer === 'recording_purged');
  assert.equal(purges.length, 1, 'one purge, of the recording past retention');
  assert.deepEqual(purges[0]!.args, { recording_id: due });
  assert.equal(purges[0]!.caller, 'system:retention');
  assert.ok(purges[0]!.outcome.ok);
  assert.equal(after.held.status, 'finalized', 'legal hold: not purged');
  assert.equal(after.held.legal_hold, true);
  assert.ok(fs.existsSync(heldPath), 'the held media stays on disk');
  assert.ok(store.verify().ok && store.replay().ok);
});
