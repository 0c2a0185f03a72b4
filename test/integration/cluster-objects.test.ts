/**
 * Recordings and agent bundles in the cluster's object store (store/jetstream-blobs.ts, recording/chunk-mirror.ts,
 * agents/bundle-store.ts) on a real 3-server NATS cluster, two Store.openCluster nodes on one log:
 *  - a recording on A stores chunks while the call records; finalized on A, B reads it from the object store and
 *    it matches the sha256 B's row (from the log) carries; its chunks are gone after finalize;
 *  - A stops mid-call (its recorder abandoned, as a kill leaves it): B resumes the recording with the segment A
 *    stored (at most the last chunk short of what A flushed), a new segment and a gap, and finalizes it;
 *  - an agent deployed on A goes live on B through the log: B fetches the bundle and runs a turn on it; paused on
 *    A, its worker stops on B too; resumed on A, B starts it again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { bundleAgent } from '../../agents/bundle.ts';
import { defaultAgent } from '../../agents/default-agent.ts';
import { AgentRegistry } from '../../agents/registry.ts';
import type { RecordingHandle } from '../../bridge/recording-port.ts';
import type { AudioFrame } from '../../media/frame.ts';
import { workPrefix } from '../../recording/chunk-mirror.ts';
import { decryptRecording } from '../../recording/crypto.ts';
import { RecordingService } from '../../recording/service.ts';
import { schema, type SwitchboardTables } from '../../schema/index.ts';
import { agent_paused, agent_resumed, call_answered, call_ended, call_received, consent_decided, consent_policy_created, consent_started, tenant_created } from '../../schema/reducers.ts';
import { clusterBlobStore, resolveDurability, Store, type BlobStore } from '../../store/index.ts';
import { conciergeSource } from '../helpers/agent-source.ts';
import { TEST_MASTER } from '../helpers/call-fixture.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const T = { tenant: 'acme', caller: 'test' };
const CHUNK_MS = 500;
const logger = pino({ level: 'silent' });
let nats: NatsCluster;
const cleanup: Array<() => Promise<void> | void> = [];

before(async () => {
  nats = await startNatsCluster(3);
});
after(async () => {
  for (const c of cleanup.reverse()) await c();
  await nats.stop();
});

interface Node {
  name: string;
  dataDir: string;
  store: Store<SwitchboardTables>;
  blobs: BlobStore;
  recordings: RecordingService;
  close(): Promise<void>;
}

async function node(name: string, stream: string): Promise<Node> {
  const dataDir = tmpDir();
  const store = await Store.openCluster({ dataDir, schema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0, node: name, cluster: { servers: nats.urls, stream, replicas: 3 } });
  const blobs = await clusterBlobStore(store);
  const recordings = new RecordingService({ store, dataDir, blobs, master: TEST_MASTER, logger, cluster: true, chunkMs: CHUNK_MS, retentionSweepMs: 3_600_000 });
  recordings.start();
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    recordings.stop();
    store.close();
    await store.whenClosed();
  };
  cleanup.push(close);
  return { name, dataDir, store, blobs, recordings, close };
}

async function until<V>(get: () => V | Promise<V>, what: string, ms = 20_000): Promise<NonNullable<V>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v) return v as NonNullable<V>;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An answered call with consent granted, written on `n`. */
async function liveCall(n: Node, sid: string): Promise<string> {
  const s = n.store;
  if (!s.read(null).tenants.get('acme')) await s.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const policy = s.read('acme').consent_policies.findOne({ name: 'p' })?.id ?? resultOf(await s.submit(consent_policy_created, { name: 'p', mode: 'notify', disclosure_text: 'Recorded.' }, T)).policy_id;
  const callId = resultOf(await s.submit(call_received, { provider: 'webrtc', provider_call_id: sid, from: 'a', to: 'b' }, T)).call_id;
  resultOf(await s.submit(call_answered, { call_id: callId }, T));
  const { consent_id } = resultOf(await s.submit(consent_started, { call_id: callId, policy_id: policy }, T));
  resultOf(await s.submit(consent_decided, { consent_id, outcome: 'granted', method: 'implied', evidence: {} }, T));
  return callId;
}

/** Feeds 20 ms caller frames (a tone) at the real pace until `done()` says so. */
async function speak(handle: RecordingHandle, done: () => Promise<boolean> | boolean): Promise<void> {
  let ts = 0;
  while (!(await done())) {
    const samples = new Int16Array(160);
    for (let i = 0; i < samples.length; i++) samples[i] = Math.round(8000 * Math.sin(((ts + i) * 2 * Math.PI * 440) / 8000));
    const frame: AudioFrame = { samples, sampleRate: 8000, timestamp: ts };
    handle.tap.process(frame, 'caller');
    ts += 160;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const chunksOf = async (n: Node, recordingId: string): Promise<string[]> => (await n.blobs.list(workPrefix('acme', recordingId))).filter((k) => /\.pcm\/\d+$/.test(k));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('chunks are stored while A records; the recording finalized on A reads on B identical (sha256); chunks deleted', { timeout: 120_000 }, async () => {
  const a = await node('node-a', 'LOG_OBJ1');
  const b = await node('node-b', 'LOG_OBJ1');
  const callId = await liveCall(a, 'obj-1');
  const answeredAt = Date.now();
  const handle = await a.recordings.begin({ tenant: 'acme', callId, answeredAt });
  assert.ok(handle, 'recording started');
  // Recording on until the object store holds at least three chunks of it: they appear during the call.
  await speak(handle, async () => (await chunksOf(a, handle.recordingId)).length >= 3);
  assert.ok((await chunksOf(b, handle.recordingId)).length >= 3, 'B sees the chunks A stored');
  await handle.finish();
  await a.store.submit(call_ended, { call_id: callId, reason: 'hangup' }, T);
  const row = await until(() => {
    const r = b.store.read('acme').recordings.get(handle.recordingId);
    return r?.status === 'finalized' ? r : null;
  }, 'B applies recording_finalized');
  assert.match(row.uri ?? '', /^nats:acme\//);
  const plain = decryptRecording(await b.blobs.get(row.uri!), TEST_MASTER);
  assert.equal(sha(plain), row.sha256, 'B serves the bytes A finalized');
  assert.equal(plain.length, row.bytes);
  assert.equal(plain.subarray(0, 4).toString(), 'RIFF');
  await until(async () => (await a.blobs.list(workPrefix('acme', handle.recordingId))).length === 0, 'chunks deleted after finalize');
});

test('A stops mid-call: B resumes with what A stored (≤ one chunk short), a new segment and a gap, and finalizes', { timeout: 120_000 }, async () => {
  const a = await node('node-a2', 'LOG_OBJ2');
  const b = await node('node-b2', 'LOG_OBJ2');
  const callId = await liveCall(a, 'obj-2');
  const answeredAt = Date.now();
  const onA = await a.recordings.begin({ tenant: 'acme', callId, answeredAt });
  assert.ok(onA);
  await speak(onA, async () => (await chunksOf(a, onA.recordingId)).length >= 2);
  // A dies: its recorder is never closed, nothing more is stored; its store goes away.
  const flushedOnA = fs.statSync(path.join(a.dataDir, 'recordings-work', onA.recordingId, 'seg-000.pcm')).size;
  await a.close();
  await b.store.waitForPosition(b.store.logPosition);
  const onB = await b.recordings.begin({ tenant: 'acme', callId, answeredAt });
  assert.ok(onB);
  assert.equal(onB.recordingId, onA.recordingId, 'the same recording, resumed');
  const restored = fs.statSync(path.join(b.dataDir, 'recordings-work', onA.recordingId, 'seg-000.pcm')).size;
  const chunkBytes = (8000 * CHUNK_MS * 4) / 1000;
  assert.ok(restored > 0 && restored <= flushedOnA, `restored ${restored} of ${flushedOnA} bytes`);
  assert.ok(flushedOnA - restored <= chunkBytes + 8000 * 4, `lost ${flushedOnA - restored} bytes: at most the last chunk (and the unflushed tail)`);
  let frames = 0;
  await speak(onB, () => ++frames > 25);
  await onB.finish();
  await b.store.submit(call_ended, { call_id: callId, reason: 'hangup' }, T);
  const row = await until(() => {
    const r = b.store.read('acme').recordings.get(onA.recordingId);
    return r?.status === 'finalized' ? r : null;
  }, 'B finalizes');
  assert.deepEqual(row.segments.map((s) => s.file), ['seg-000.pcm', 'seg-001.pcm']);
  assert.equal(row.segments[0]!.bytes, restored);
  assert.equal(row.gaps.length, 1, 'the resume recorded a gap');
  const plain = decryptRecording(await b.blobs.get(row.uri!), TEST_MASTER);
  assert.equal(sha(plain), row.sha256);
});

test('an agent deployed on A goes live on B: B fetches the bundle and runs a turn on it; paused on A it stops on B, resumed it starts again', { timeout: 120_000 }, async () => {
  const a = await node('node-a3', 'LOG_OBJ3');
  const b = await node('node-b3', 'LOG_OBJ3');
  await a.store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const registry = (n: Node): AgentRegistry => {
    const r = new AgentRegistry({ store: n.store, dataDir: n.dataDir, logger, builtins: new Map([['default', defaultAgent]]), fallback: defaultAgent, bundles: n.blobs });
    cleanup.push(() => r.close());
    return r;
  };
  const ra = registry(a);
  const rb = registry(b);
  await Promise.all([ra.start(), rb.start()]);
  const src = path.join(a.dataDir, 'concierge.ts');
  fs.writeFileSync(src, conciergeSource('v1', { work: a.dataDir }));
  const { code, sha256 } = await bundleAgent(src);
  const v1 = await ra.deploy('acme', 'system:test', 'concierge', code, { rollout: 100, migrate: false });
  assert.equal(v1.status, 'live');
  assert.ok(await a.blobs.exists(a.blobs.uriFor(`bundles/${sha256}.mjs`)), 'the bundle is in the object store');
  await until(() => rb.workers > 0, 'B started the version');
  assert.ok(fs.existsSync(path.join(b.dataDir, 'agents', `${sha256}.mjs`)), 'B fetched the bundle');
  const callId = resultOf(await b.store.submit(call_received, { provider: 'webrtc', provider_call_id: 'obj-3', from: 'a', to: 'b', agent: 'concierge' }, T)).call_id;
  const agent = await rb.select({ tenant: 'acme', callId, name: 'concierge', pinned: null }, null);
  assert.equal(agent.version, 'v1');
  const said: string[] = [];
  const actions = {
    say: async (text: string) => (said.push(text), { interrupted: false, heardMs: 0 }),
  } as unknown as Parameters<typeof agent.runTurn>[1];
  await agent.runTurn({ hook: 'onStart', callId, turn: 1, call: { from: 'a', to: 'b' }, state: {} }, actions);
  assert.deepEqual(said, ['Hello from v1.']);
  resultOf(await a.store.submit(agent_paused, { agent: 'concierge', reason: 'cluster' }, T));
  await until(() => rb.workers === 0 && ra.workers === 0, 'a pause written on A stops the worker on B (and on A)');
  resultOf(await a.store.submit(agent_resumed, { agent: 'concierge' }, T));
  await until(() => rb.workers > 0 && ra.workers > 0, 'a resume on A starts the live version on B again');
});
