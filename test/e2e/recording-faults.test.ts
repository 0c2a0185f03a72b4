/**
 * Consent by speech and recording under faults, against the real
 * `switchboard start` process: spoken "yes" (pocketsphinx), pocketsphinx
 * missing (DTMF-only with a warning), kill -9 mid-recording (a playable file
 * with the gap recorded), disk full while recording (the call goes on, the
 * recording is marked failed).
 */
import { openStore as openContentStore } from '../helpers/content.ts';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { decryptRecording, loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { api } from '../helpers/api.ts';
import { speechUlaw } from '../helpers/audio.ts';
import { freePort, spawnGateway, TWILIO_TOKEN, type GatewayProcess } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { probeMount, underCi } from '../helpers/mount.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import type { ArgsOf } from '../../store/index.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15554440000';
const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A consent policy's fields beyond its name (the reducer's own argument type). */
type Policy = Partial<Omit<ArgsOf<typeof consent_policy_created>, 'name'>>;

async function seed(dataDir: string, policy: Policy): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  const who = { tenant: 'default', caller: 'test' };
  await Promise.all([
    store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { ...who, id: 'bootstrap:tenant:default' }),
    store.submit(consent_policy_created, { name: 'rec', mode: 'opt-in', timeout_ms: 3000, retries: 0, ...policy, disclosure_text: policy.disclosure_text ?? 'We record calls.' }, who),
  ]).then(async ([, p]) => resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: resultOf<{ policy_id: string }>(p).policy_id }, who)));
  store.close();
}

/** The data dir's store with its sealed content readable (test/helpers/content.ts). */
async function openStore(dataDir: string) {
  const store = await openContentStore({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  cleanup.push(() => store.close());
  return store;
}

async function startCall(policy: Policy, env: Record<string, string> = {}, dataDir = tmpDir('sb-rf-')) {
  await seed(dataDir, policy);
  const port = await freePort();
  let gw: GatewayProcess = await spawnGateway({ port, dataDir, env });
  cleanup.push(() => gw.stop());
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550004444', redirectRetryMs: 30_000 });
  cleanup.push(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  return {
    peer,
    dataDir,
    get gw() {
      return gw;
    },
    restart: async () => {
      await gw.kill9();
      gw = await spawnGateway({ port, dataDir, env });
    },
    finish: async () => {
      await peer.hangup();
      await new Promise((r) => setTimeout(r, 500));
      await gw.stop();
      return await openStore(dataDir);
    },
  };
}

/** Waits (bounded) until the call's events hold the agent's answer to key `digit` (GET /v1/calls/:id/events). */
async function pressedAnswered(url: string, digit: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const list = await api<{ calls: Array<{ id: string }> }>(url, 'GET', '/v1/calls');
    const id = list.body.calls[0]?.id;
    if (id) {
      // the call detail opens the sealed args (the events route serves the log as chained: sealed)
      const d = await api<{ agent_actions: Array<{ kind: string; args: unknown }> }>(url, 'GET', `/v1/calls/${id}`);
      if ((d.body.agent_actions ?? []).some((a) => a.kind === 'say' && JSON.stringify(a.args).includes(`pressed ${digit}`))) return;
    }
    if (Date.now() > deadline) throw new Error(`the agent's answer to key ${digit} was not recorded within 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Silence of the gateway's prompt: wait until no agent audio arrived for `ms`. */
async function promptPlayed(peer: TwilioPeer, minBytes: number): Promise<void> {
  await peer.waitFor(() => peer.receivedAudio().length >= minBytes, 15_000, 'prompt audio');
}

test('a spoken "yes" grants consent by speech, with the recognised words and their time as evidence', { timeout: 60_000 }, async () => {
  const c = await startCall({ mode: 'opt-in' });
  await promptPlayed(c.peer, 8000); // one second of the prompt, then answer over it
  await c.peer.play(speechUlaw('yes I agree to the recording'));
  await c.peer.waitFor(() => c.peer.clears >= 1, 5000, 'the answer cut the prompt short');
  await new Promise((r) => setTimeout(r, 4000));
  const store = await c.finish();
  const call = store.read('default').calls.find()[0]!;
  const consent = store.read('default').consents.get(call.consent_id!)!;
  assert.equal(consent.outcome, 'granted');
  assert.equal(consent.method, 'speech');
  const ev = consent.evidence as { words: string; at_ms: number };
  assert.match(ev.words, /yes/);
  assert.ok(ev.at_ms > 500 && ev.at_ms < 10_000, `answer time on the recording clock: ${ev.at_ms}`);
  assert.equal(store.read('default').recordings.find({ call_id: call.id })[0]?.status, 'finalized');
});

test('pocketsphinx missing: a clear warning, and consent still works by DTMF', { timeout: 60_000 }, async () => {
  const c = await startCall({ mode: 'opt-in' }, { SWITCHBOARD_POCKETSPHINX: '/nonexistent/pocketsphinx_continuous' });
  assert.ok(c.gw.logs.some((l) => /pocketsphinx is not available: consent by DTMF only/.test(l)), 'warned at start');
  await promptPlayed(c.peer, 4000);
  await c.peer.play(speechUlaw('yes I agree to the recording'));
  c.peer.sendDtmf('1');
  await new Promise((r) => setTimeout(r, 2000));
  const store = await c.finish();
  const call = store.read('default').calls.find()[0]!;
  const consent = store.read('default').consents.get(call.consent_id!)!;
  assert.deepEqual([consent.outcome, consent.method], ['granted', 'dtmf']);
});

test('kill -9 mid-recording: the resumed call records a new segment; the file plays, with the gap recorded', { timeout: 90_000 }, async () => {
  const c = await startCall({ mode: 'notify', disclosure_text: 'Recorded line.' });
  await c.peer.waitFor(() => c.peer.receivedAudio().length > 24_000, 15_000, 'recording for a while');
  await c.peer.play(speechUlaw('my account number is on the letter'));
  await c.restart();
  await c.peer.waitFor(() => c.peer.streams === 2, 30_000, 'resumed').catch((e: Error) => {
    throw new Error(`${e.message}; peer ended: ${c.peer.endReason} ${c.peer.endDetail}; gateway log:\n${c.gw.logs.filter((l) => !/"msg":"http"/.test(l)).join('\n').slice(-3000)}`);
  });
  await new Promise((r) => setTimeout(r, 3000));
  const store = await c.finish();
  const call = store.read('default').calls.find()[0]!;
  const rec = store.read('default').recordings.find({ call_id: call.id })[0]!;
  assert.equal(rec.status, 'finalized', String(rec.failure));
  assert.equal(rec.segments.length, 2, 'one segment per media connection');
  assert.equal(rec.gaps.length, 1);
  const gap = rec.gaps[0] as { start_ms: number; end_ms: number };
  assert.ok(gap.end_ms > gap.start_ms, JSON.stringify(gap));
  const plain = decryptRecording(fs.readFileSync(new FsBlobStore(c.dataDir).pathOf(rec.uri!)), loadOrCreateMasterKey(c.dataDir));
  assert.equal(crypto.createHash('sha256').update(plain).digest('hex'), rec.sha256);
  const file = path.join(tmpDir('sb-rf-'), 'r.wav');
  fs.writeFileSync(file, plain);
  const seconds = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], { encoding: 'utf8' }));
  // The file spans the recording clock: the second segment starts after the gap (filled with silence) and ends
  // the file. Checked against the recording's own rows, not wall-clock spans (those drift apart on a busy machine).
  const second = rec.segments[1] as { start_ms: number; duration_ms: number };
  assert.ok(second.start_ms >= gap.end_ms - 40, `the second segment starts after the gap: ${JSON.stringify({ gap, second })}`);
  const clockMs = second.start_ms + second.duration_ms;
  assert.ok(Math.abs(seconds * 1000 - clockMs) <= 60, `file ${seconds * 1000} ms vs recording clock ${clockMs} ms (gap filled with silence)`);
  // And the gap is in the file, not dropped: the file covers the call, give or take the machine's load.
  const callMs = call.ended_at! - call.answered_at!;
  assert.ok(seconds * 1000 > callMs - (gap.end_ms - gap.start_ms) / 2, `file ${seconds * 1000} ms vs call ${callMs} ms with a ${gap.end_ms - gap.start_ms} ms gap`);
});

// Needs root to mount a tiny tmpfs as the recordings' working dir; CI runs as root, and there a refusal fails.
// Under CI the probe is not consulted: the test runs, and its own mount fails it with the reason.
const mountRefused = underCi() ? null : probeMount();
test('disk full while recording: the call continues, the recording is marked failed with the reason', { timeout: 60_000, skip: mountRefused ?? false }, async () => {
  const dataDir = tmpDir('sb-rf-');
  const work = path.join(dataDir, 'recordings-work');
  fs.mkdirSync(work, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', work]);
  cleanup.push(() => void spawnSync('umount', ['-l', work]));
  const c = await startCall({ mode: 'notify', disclosure_text: 'Recorded line.' }, {}, dataDir);
  // 96 KiB holds ~3 s of 8 kHz stereo: let it fill, then check the call is still served.
  await new Promise((r) => setTimeout(r, 6000));
  const before = c.peer.receivedAudio().length;
  c.peer.sendDtmf('4');
  await c.peer.waitFor(() => c.peer.receivedAudio().length > before + 4000, 10_000, 'the agent still answers');
  // The key press's answer is a committed agent action before the call is hung up (the audio above may still be
  // the greeting's tail on a busy machine).
  await pressedAnswered(c.gw.publicUrl, '4');
  const store = await c.finish();
  const call = store.read('default').calls.find()[0]!;
  assert.equal(call.state, 'ended');
  assert.equal(call.end_reason, 'twilio:completed');
  const rec = store.read('default').recordings.find({ call_id: call.id })[0]!;
  assert.equal(rec.status, 'failed');
  assert.match(String(rec.failure), /ENOSPC|no space/i);
  assert.ok(store.read('default').agent_actions.find({ call_id: call.id }).some((a) => JSON.stringify(a.args).includes('pressed 4')));
  assert.ok(store.verify().ok && store.replay().ok, 'no committed row lost');
});
