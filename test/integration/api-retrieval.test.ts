/**
 * Audited retrieval over HTTP: each retrieval path commits exactly one access
 * row before serving (and a replay of the log rebuilds the same rows); Range
 * requests; format conversion; another tenant's ids answer 404 and write
 * nothing; a failed access commit serves nothing; bad filters are a 400 with
 * the zod message; the evidence pack downloaded over HTTP verifies with its
 * own VERIFY commands.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { api, userToken } from '../helpers/api.ts';
import { finishedCall, type FinishedCall } from '../helpers/call-fixture.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
let call: FinishedCall;
let foreign: FinishedCall;
let auditor: string;
let otherAdmin: string;

before(async () => {
  gw = await startTestGateway();
  const blobs = new FsBlobStore(gw.dataDir);
  const master = loadOrCreateMasterKey(gw.dataDir);
  call = await finishedCall(gw.store, blobs, { tenant: 'default', master, seconds: 6 });
  const t = await api<{ token: string }>(gw.publicUrl, 'POST', '/v1/tenants', { body: { id: 'other', name: 'Other Co', admin_email: 'boss@other.example' } });
  assert.equal(t.status, 201, JSON.stringify(t.body));
  otherAdmin = t.body.token;
  foreign = await finishedCall(gw.store, blobs, { tenant: 'other', master, transcript: [{ channel: 'caller', start_ms: 0, end_ms: 900, text: 'my appointment is secret' }] });
  auditor = (await userToken(gw.publicUrl, 'auditor')).token;
});
after(async () => {
  await gw?.stop();
});

const accessRows = (tenant = 'default') => gw.store.read(tenant).access_log.find({}, { orderBy: 'at' });

test('each retrieval path commits exactly one access row (who, what, why, from where) before serving', async () => {
  const paths: Array<[string, string, string]> = [
    [`/v1/calls/${call.callId}/recording`, 'recording_accessed', 'wav'],
    [`/v1/calls/${call.callId}/transcript?format=vtt`, 'transcript_accessed', 'vtt'],
    [`/v1/calls/${call.callId}/transcript?format=txt`, 'transcript_accessed', 'txt'],
    [`/v1/calls/${call.callId}/transcript`, 'transcript_accessed', 'json'],
    [`/v1/calls/${call.callId}`, 'transcript_accessed', 'call detail'],
    [`/v1/calls/${call.callId}/events`, 'evidence_exported', 'events'],
    [`/v1/calls/${call.callId}/evidence`, 'evidence_exported', 'pack'],
  ];
  const me = await api<{ id: string }>(gw.publicUrl, 'GET', '/v1/auth/me', { token: auditor });
  for (const [p, action, detail] of paths) {
    const before = accessRows().length;
    const r = await api(gw.publicUrl, 'GET', p, { token: auditor, headers: { 'x-switchboard-purpose': `audit ticket 42 ${detail}` } });
    assert.equal(r.status, 200, `${p}: ${r.status}`);
    const rows = accessRows();
    assert.equal(rows.length, before + 1, `${p} wrote ${rows.length - before} access rows`);
    const row = rows.at(-1)!;
    assert.equal(row.action, action);
    assert.equal(row.user_id, me.body.id);
    assert.equal(row.call_id, call.callId);
    assert.equal(row.detail, detail);
    assert.equal(row.reason, `audit ticket 42 ${detail}`);
    assert.match(row.remote ?? '', /127\.0\.0\.1/);
  }
  const log = await api<{ entries: Array<{ action: string }> }>(gw.publicUrl, 'GET', `/v1/access-log?call_id=${call.callId}`, { token: auditor });
  assert.equal(log.status, 200);
  assert.equal(log.body.entries.length, paths.length);
  // The rows are facts of the log: a replay rebuilds them identically.
  const replay = gw.store.replay();
  assert.equal(replay.ok, true, JSON.stringify(replay.outcomeMismatches.slice(0, 2)));
  assert.equal(replay.tables.access_log?.replayed, replay.tables.access_log?.live);
  assert.ok((replay.tables.access_log?.replayed ?? 0) >= paths.length);
});

test('the recording is the exact stored bytes (sha256 as recorded); Range requests return slices; an unsatisfiable range is a 416 and writes nothing', async () => {
  const full = await api(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/recording?purpose=qa`, { token: auditor });
  assert.equal(full.status, 200);
  assert.equal(full.headers.get('accept-ranges'), 'bytes');
  assert.equal(full.headers.get('content-type'), 'audio/wav');
  assert.deepEqual(full.raw, call.wav);
  const rec = gw.store.read('default').recordings.get(call.recordingId)!;
  assert.equal(createHash('sha256').update(full.raw).digest('hex'), rec.sha256);
  assert.equal(full.headers.get('etag'), `"${rec.sha256}"`);

  // Ranges across the 64 KiB encryption chunk boundary, an open end, and a suffix.
  const cases: Array<[string, number, number]> = [
    ['bytes=0-99', 0, 99],
    ['bytes=65530-65545', 65530, 65545],
    [`bytes=${call.wav.length - 10}-`, call.wav.length - 10, call.wav.length - 1],
    ['bytes=-500', call.wav.length - 500, call.wav.length - 1],
  ];
  for (const [range, start, end] of cases) {
    const r = await api(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/recording`, { token: auditor, headers: { range } });
    assert.equal(r.status, 206, range);
    assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${call.wav.length}`);
    assert.deepEqual(r.raw, call.wav.subarray(start, end + 1), range);
    assert.match(accessRows().at(-1)!.detail ?? '', new RegExp(`bytes=${start}-${end}`));
  }
  const before = accessRows().length;
  const bad = await api(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/recording`, { token: auditor, headers: { range: `bytes=${call.wav.length + 5}-` } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers.get('content-range'), `bytes */${call.wav.length}`);
  assert.equal(accessRows().length, before, 'nothing served, nothing logged');
});

test('?format=ogg serves Ogg/Opus made by ffmpeg; an unknown format is a 400', async () => {
  const ogg = await api(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/recording?format=ogg`, { token: auditor });
  assert.equal(ogg.status, 200);
  assert.equal(ogg.headers.get('content-type'), 'audio/ogg');
  assert.equal(ogg.raw.subarray(0, 4).toString('latin1'), 'OggS');
  assert.ok(ogg.raw.includes(Buffer.from('OpusHead')));
  assert.equal(accessRows().at(-1)!.detail, 'ogg');
  const bad = await api<{ error: { message: string } }>(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/recording?format=flac`, { token: auditor });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /format/);
});

test('another tenant\'s call, recording and transcript answer 404 on every path, and write nothing', async () => {
  const before = { mine: accessRows().length, theirs: accessRows('other').length };
  for (const p of [
    `/v1/calls/${foreign.callId}`,
    `/v1/calls/${foreign.callId}/recording`,
    `/v1/calls/${foreign.callId}/transcript`,
    `/v1/calls/${foreign.callId}/events`,
    `/v1/calls/${foreign.callId}/evidence`,
  ]) {
    const r = await api<{ error: { code: string } }>(gw.publicUrl, 'GET', p, { token: auditor });
    assert.equal(r.status, 404, p);
    assert.equal(JSON.stringify(r.body).includes('secret'), false);
  }
  assert.equal((await api(gw.publicUrl, 'PUT', `/v1/recordings/${foreign.recordingId}/hold`)).status, 404);
  const list = await api<{ calls: Array<{ id: string }> }>(gw.publicUrl, 'GET', '/v1/calls?q=appointment', { token: auditor });
  assert.deepEqual(list.body.calls.map((c) => c.id), [call.callId], 'search never crosses tenants');
  assert.deepEqual({ mine: accessRows().length, theirs: accessRows('other').length }, before);
  // … and the other tenant's admin sees their own call and not ours.
  const theirs = await api<{ calls: Array<{ id: string }> }>(gw.publicUrl, 'GET', '/v1/calls', { token: otherAdmin });
  assert.deepEqual(theirs.body.calls.map((c) => c.id), [foreign.callId]);
  assert.equal((await api(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/recording`, { token: otherAdmin })).status, 404);
});

test('if the access row cannot be committed, nothing is served (503, no audio bytes)', async () => {
  const original = gw.store.submit.bind(gw.store);
  gw.store.submit = ((reducer: Parameters<typeof original>[0], args: Parameters<typeof original>[1], opts: Parameters<typeof original>[2]) =>
    reducer.name === 'recording_accessed' || reducer.name === 'transcript_accessed'
      ? Promise.reject(Object.assign(new Error('disk I/O error'), { code: 'storage_failed' }))
      : original(reducer, args, opts)) as typeof gw.store.submit;
  try {
    const r = await api<{ error: { code: string } }>(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/recording`, { token: auditor });
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'store_unavailable');
    assert.equal(r.raw.includes(call.wav.subarray(100, 200)), false);
    const t = await api(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/transcript?format=txt`, { token: auditor });
    assert.equal(t.status, 503);
    assert.equal(String(t.body).includes('appointment'), false);
  } finally {
    gw.store.submit = original;
  }
});

test('bad filters are a 400 carrying the zod message that names the field', async () => {
  for (const [q, field] of [
    ['state=flying', 'state'],
    ['limit=0', 'limit'],
    ['since=yesterday-ish', 'since'],
    ['cursor=%%%', 'cursor'],
    ['colour=blue', 'colour'],
  ] as const) {
    const r = await api<{ error: { code: string; message: string } }>(gw.publicUrl, 'GET', `/v1/calls?${q}`, { token: auditor });
    assert.equal(r.status, 400, q);
    assert.equal(r.body.error.code, 'invalid_request');
    assert.match(r.body.error.message, new RegExp(field), q);
  }
});

test('the evidence pack downloaded over HTTP verifies offline with its own commands, and fails after one recording byte changes', async () => {
  const r = await api(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/evidence?purpose=regulator%20request`, { token: auditor });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/zip');
  const dir = tmpDir('sb-pack-');
  fs.writeFileSync(path.join(dir, 'pack.zip'), r.raw);
  execFileSync('unzip', ['-q', 'pack.zip', '-d', 'pack'], { cwd: dir });
  const pack = path.join(dir, 'pack');
  const ok = spawnSync('sh', ['verify.sh'], { cwd: pack, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  // The export itself is in the proof: its evidence_exported event is one of the pack's events.
  const events = fs.readdirSync(path.join(pack, 'events')).filter((f) => f.endsWith('.json'));
  assert.ok(events.some((f) => fs.readFileSync(path.join(pack, 'events', f), 'utf8').includes('"reducer":"evidence_exported"')));
  const wav = fs.readFileSync(path.join(pack, 'recording.wav'));
  wav[wav.length - 1] = (wav[wav.length - 1] ?? 0) ^ 0x01;
  fs.writeFileSync(path.join(pack, 'recording.wav'), wav);
  const bad = spawnSync('sh', ['verify.sh'], { cwd: pack, encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout + bad.stderr, /recording\.wav/);
});

test('GET /v1/audit/verify checks the whole log and reports the head and the node key', async () => {
  const r = await api<{ ok: boolean; events: number; head: { seq: number }; public_key: string }>(gw.publicUrl, 'GET', '/v1/audit/verify', { token: auditor });
  assert.equal(r.status, 200);
  assert.equal(r.body.ok, true);
  assert.ok(r.body.events >= r.body.head.seq - 5 && r.body.head.seq > 0);
  assert.match(r.body.public_key, /BEGIN PUBLIC KEY/);
});
