/**
 * Erasable content (issue 17, README "Erasable content"): a real Twilio call, recorded, with a transcript line,
 * a tool call (args and result), a note and agent state carrying strings found nowhere else. Content is sealed with
 * the call's key at submission: before erasure the API opens it and transcript search finds the call, yet the tool
 * and note strings appear nowhere in the data dir. A legal hold refuses erasure (409 legal_hold); released, the call
 * is erased: afterwards a recursive grep of the whole data dir (SQLite file, WAL, recordings, keys) finds none of
 * its strings, the API and evidence pack say "erased on … by … (reason)", the pack verifies, search no longer
 * finds it, and `verify` and `replay` pass on the data dir.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { agent_action_completed, agent_action_requested, agent_state_saved, consent_policy_created, number_added, transcript_appended } from '../../schema/reducers.ts';
import { Store } from '../../store/index.ts';
import { api } from '../helpers/api.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15553337777';
const SAID = 'quokkamarmalade';
const TOOL_ARG = 'zanzibarquill';
const TOOL_RESULT = 'obsidianmeadow';
const NOTE = 'peregrinelantern';
const STATE = 'tangerinefjord';
const ALL = [SAID, TOOL_ARG, TOOL_RESULT, NOTE, STATE];

/** The strings of `needles` found anywhere under `dir` (binary files read as text, case-insensitive). */
function grepDir(dir: string, needles: readonly string[]): string[] {
  const found: string[] = [];
  for (const n of needles) {
    const r = spawnSync('grep', ['-r', '-a', '-i', '-l', n, dir], { encoding: 'utf8' });
    if (r.status === 0) found.push(`${n}: ${r.stdout.trim().split('\n').join(', ')}`);
  }
  return found;
}

test('an erased call leaves none of its content in the data dir; API and evidence say erased; verify and replay pass; legal hold refuses', { timeout: 150_000 }, async (t) => {
  const gw = await startTestGateway();
  let stopped = false;
  t.after(() => (stopped ? undefined : gw.stop()));
  const who = { tenant: 'default', caller: 'system:test' };
  const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'erasable', mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 8000, retries: 0 }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));

  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550007777' });
  t.after(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const read = () => gw.store.read('default');
  const call = () => read().calls.findOne({ provider_call_id: peer.callSid });
  await peer.waitFor(() => call()?.consent_id != null, 8000, 'consent started');
  peer.sendDtmf('1');
  await peer.waitFor(() => call()?.state === 'active', 8000, 'consent granted');
  const callId = call()!.id;
  // Content as the bridge writes it, through the store's submit path (which seals it).
  resultOf(await gw.store.submit(transcript_appended, { call_id: callId, channel: 'caller', start_ms: 0, end_ms: 500, text: `my word is ${SAID}`, provider: 'test' }, who));
  const tool = resultOf<{ action_id: string }>(await gw.store.submit(agent_action_requested, { call_id: callId, kind: 'tool', request_id: 'test:tool:1', args: { account: TOOL_ARG } }, who));
  resultOf(await gw.store.submit(agent_action_completed, { action_id: tool.action_id, ok: true, result: { found: TOOL_RESULT } }, who));
  resultOf(await gw.store.submit(agent_action_requested, { call_id: callId, kind: 'note', request_id: 'test:note:1', args: { text: NOTE } }, who));
  resultOf(await gw.store.submit(agent_state_saved, { call_id: callId, agent: 'default', version: 'builtin', turn: 1000, state: { favourite: STATE } }, who));
  await peer.hangup();
  await peer.waitFor(() => read().recordings.find({ call_id: callId })[0]?.status === 'finalized', 20_000, 'recording finalized');
  const rec = read().recordings.find({ call_id: callId })[0]!;

  // Sealed at submission: the log and the tables hold none of the payloads; the API opens them.
  assert.deepEqual(grepDir(gw.dataDir, [TOOL_ARG, TOOL_RESULT, NOTE, STATE]), [], 'payloads are ciphertext in the data dir');
  const before = await api<{ transcript: Array<{ text: string }>; agent_actions: Array<{ args: unknown; result: unknown }>; agent_state: { state: unknown } }>(gw.publicUrl, 'GET', `/v1/calls/${callId}`);
  assert.equal(before.status, 200);
  assert.ok(before.body.transcript.some((s) => s.text.includes(SAID)), 'the transcript reads in clear through the API');
  assert.ok(JSON.stringify(before.body.agent_actions).includes(TOOL_ARG) && JSON.stringify(before.body.agent_actions).includes(TOOL_RESULT));
  assert.deepEqual(before.body.agent_state.state, { favourite: STATE });
  const found = await api<{ calls: Array<{ id: string }> }>(gw.publicUrl, 'GET', `/v1/calls?q=${SAID}`);
  assert.deepEqual(found.body.calls.map((c) => c.id), [callId], 'search finds the live call by its decrypted words');

  // Legal hold refuses; released, the erasure goes through.
  assert.equal((await api(gw.publicUrl, 'PUT', `/v1/recordings/${rec.id}/hold`)).status, 200);
  const refused = await api<{ error: { code: string } }>(gw.publicUrl, 'POST', `/v1/calls/${callId}/erase`, { body: { reason: 'GDPR Art. 17 request', reference: 'DSR-1' } });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, 'legal_hold');
  assert.equal(read().content_erasures.get(callId), undefined);
  assert.equal((await api(gw.publicUrl, 'DELETE', `/v1/recordings/${rec.id}/hold`)).status, 200);
  const erased = await api<{ call_id: string; keys: string[] }>(gw.publicUrl, 'POST', `/v1/calls/${callId}/erase`, { body: { reason: 'GDPR Art. 17 request', reference: 'DSR-1' } });
  assert.equal(erased.status, 200, JSON.stringify(erased.body));
  assert.ok(erased.body.keys.some((k) => k.startsWith('ck_')) && erased.body.keys.includes(`recording:${rec.id}`), 'the content key and the recording key are named');
  assert.equal((await api(gw.publicUrl, 'POST', `/v1/calls/${callId}/erase`, { body: { reason: 'again' } })).status, 409);

  const after = await api<{ erasure: { note: string } | null; transcript: Array<{ text: string }>; recordings: Array<{ status: string }> }>(gw.publicUrl, 'GET', `/v1/calls/${callId}`);
  assert.match(after.body.erasure?.note ?? '', /^erased on \d{4}-.* by user:.* \(GDPR Art\. 17 request; ref DSR-1\)$/);
  assert.ok(after.body.transcript.every((s) => s.text === ''));
  assert.deepEqual(after.body.recordings.map((r) => r.status), ['purged']);
  assert.deepEqual((await api<{ calls: unknown[] }>(gw.publicUrl, 'GET', `/v1/calls?q=${SAID}`)).body.calls, [], 'search no longer finds it');

  const pack = await api(gw.publicUrl, 'GET', `/v1/calls/${callId}/evidence`);
  assert.equal(pack.status, 200);
  const dir = tmpDir('sb-erased-pack-');
  fs.writeFileSync(path.join(dir, 'pack.zip'), pack.raw);
  execFileSync('unzip', ['-q', 'pack.zip', '-d', 'pack'], { cwd: dir });
  const ok = spawnSync('sh', ['verify.sh'], { cwd: path.join(dir, 'pack'), encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(fs.readFileSync(path.join(dir, 'pack', 'ERASED.md'), 'utf8'), /erased on .* by user:/);
  assert.deepEqual(grepDir(path.join(dir, 'pack'), ALL), [], 'the pack holds none of the content');

  await gw.stop();
  stopped = true;
  assert.deepEqual(grepDir(gw.dataDir, ALL), [], 'nothing of the erased call anywhere in the data dir');
  const store = Store.open({ dataDir: gw.dataDir, schema });
  t.after(() => store.close());
  assert.ok(store.verify().ok, 'the hash chain verifies');
  const replay = store.replay();
  assert.ok(replay.ok, `replay reproduces the tables: ${JSON.stringify(replay).slice(0, 400)}`);
  const erasures = [...store.events()].filter((e) => e.reducer === 'call_content_erased');
  assert.deepEqual(erasures.map((e) => (e.outcome.ok ? 'ok' : e.outcome.error.code)), ['legal_hold', 'ok', 'content_erased'], 'the refusals are logged too');
  assert.equal((erasures[1]!.args as { reason: string }).reason, 'GDPR Art. 17 request');
});
