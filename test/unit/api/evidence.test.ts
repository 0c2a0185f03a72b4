/**
 * The call proof and the evidence pack against a real store: two tenants'
 * calls written concurrently (so their events interleave in the log), the pack
 * unzipped with unzip(1) and checked by its own verify.sh with sh, sha256sum
 * and openssl; then tampered with, byte by byte, and refused.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildEvidencePack } from '../../../api/evidence/pack.ts';
import { buildCallProof, verifyCallProof, type CallProof } from '../../../api/evidence/proof.ts';
import { FsBlobStore } from '../../../recording/blob-fs.ts';
import { decryptRecording } from '../../../recording/crypto.ts';
import type { SwitchboardTables } from '../../../schema/index.ts';
import type { Store } from '../../../store/index.ts';
import { finishedCall, TEST_MASTER, type FinishedCall } from '../../helpers/call-fixture.ts';
import { openTestStore } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';

let store: Store<SwitchboardTables>;
let acme: FinishedCall;
let other: FinishedCall;
let zipFile: string;

async function packFor(call: FinishedCall, withRecording: boolean): Promise<Buffer> {
  const blobs = new FsBlobStore(store.dataDir);
  const row = store.read(call.tenant).recordings.get(call.recordingId);
  assert.ok(row?.uri, 'the fixture finalized the recording');
  const wav = decryptRecording(await blobs.get(row.uri), TEST_MASTER);
  const vtt = ['WEBVTT', '', ...call.transcript.map((s, i) => `${i + 1}\n00:00:0${s.start_ms / 1000}.000 --> 00:00:0${s.end_ms / 1000}.000\n<v ${s.channel}>${s.text}\n`)].join('\n');
  return buildEvidencePack({
    store,
    tenant: call.tenant,
    callId: call.callId,
    recording: withRecording ? { wav } : null,
    transcriptVtt: vtt,
    transcriptJson: { call_id: call.callId, segments: call.transcript },
    generatedAt: Date.UTC(2025, 0, 2, 3, 4, 5),
    generatedBy: 'user:auditor@acme.test',
  });
}

function unzip(zip: string): string {
  const dir = tmpDir('sb-evidence-');
  const r = spawnSync('unzip', ['-q', zip, '-d', dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return dir;
}

function verifySh(dir: string): { status: number | null; out: string } {
  const r = spawnSync('sh', ['verify.sh'], { cwd: dir, encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function flipByte(file: string, at: number): void {
  const buf = fs.readFileSync(file);
  const i = at < 0 ? buf.length + at : at;
  buf[i] = (buf[i] ?? 0) ^ 0x01;
  fs.writeFileSync(file, buf);
}

const eventFiles = (dir: string): string[] => fs.readdirSync(path.join(dir, 'events')).filter((f) => f.endsWith('.json'));

before(async () => {
  const dir = tmpDir();
  store = openTestStore({ dataDir: dir, checkpointEvery: 5 });
  const blobs = new FsBlobStore(dir);
  [acme, other] = await Promise.all([finishedCall(store, blobs, { tenant: 'acme' }), finishedCall(store, blobs, { tenant: 'other' })]);
  zipFile = path.join(tmpDir('sb-zip-'), 'evidence.zip');
  fs.writeFileSync(zipFile, await packFor(acme, true));
});

after(() => store.close());

test('the pack unzips and its verify.sh passes with sh, sha256sum and openssl', () => {
  const dir = unzip(zipFile);
  for (const f of ['VERIFY.md', 'verify.sh', 'SHA256SUMS', 'recording.wav', 'recording.sha256', 'call.json', 'consent.json', 'transcript.json', 'transcript.vtt', 'node-public-key.pem', 'events/index.tsv', 'chain/links.tsv', 'manifest.json']) {
    assert.ok(fs.existsSync(path.join(dir, f)), `${f} in the pack`);
  }
  assert.deepEqual(fs.readFileSync(path.join(dir, 'recording.wav')), acme.wav, 'recording.wav is the plaintext');
  assert.match(fs.readFileSync(path.join(dir, 'VERIFY.md'), 'utf8'), /```sh\n#!\/bin\/sh\n[\s\S]*ALL CHECKS PASSED/);
  assert.ok(fs.readFileSync(path.join(dir, 'VERIFY.md'), 'utf8').includes(fs.readFileSync(path.join(dir, 'verify.sh'), 'utf8')), 'VERIFY.md carries verify.sh verbatim');
  const sigs = fs.readdirSync(path.join(dir, 'checkpoints')).filter((f) => f.endsWith('.sig'));
  assert.ok(sigs.length >= 2, `several checkpoints reached (${sigs.length})`);
  for (const s of sigs) assert.equal(fs.statSync(path.join(dir, 'checkpoints', s)).size, 64, 'raw Ed25519 signature bytes');
  const { status, out } = verifySh(dir);
  assert.equal(status, 0, out);
  assert.match(out, /ALL CHECKS PASSED/);
  const bodies = eventFiles(dir).map((f) => fs.readFileSync(path.join(dir, 'events', f), 'utf8'));
  for (const reducer of ['call_received', 'consent_decided', 'recording_finalized', 'agent_action_completed', 'call_ended']) {
    assert.ok(bodies.some((b) => b.includes(`"reducer":"${reducer}"`)), `the call's ${reducer} event is in the pack`);
  }
});

test('the acme pack reveals no body of the other tenant, only digests in the links', () => {
  const dir = unzip(zipFile);
  for (const f of eventFiles(dir)) {
    const body = JSON.parse(fs.readFileSync(path.join(dir, 'events', f), 'utf8')) as { command: { tenant: string } };
    assert.equal(body.command.tenant, 'acme', f);
  }
  const otherSeqs = new Set([...store.events()].filter((e) => e.tenant === 'other').map((e) => e.seq));
  const links = fs.readFileSync(path.join(dir, 'chain/links.tsv'), 'utf8').trimEnd().split('\n');
  assert.equal(links[0], 'seq\tdigest\thash');
  const rows = links.slice(1).map((l) => l.split('\t'));
  for (const r of rows) assert.equal(r.length, 3, 'a link is seq, digest, hash only');
  assert.ok(rows.some((r) => otherSeqs.has(Number(r[0]))), 'the events interleaved: other-tenant events sit in the links as digests');
  const everything = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
  for (const d of everything) {
    const text = fs.readFileSync(path.join(d.parentPath, d.name)).toString('latin1');
    assert.ok(!text.includes(other.callId), `${d.name} does not name the other tenant's call`);
    assert.ok(!text.includes('"tenant":"other"'), `${d.name} holds no other-tenant body`);
  }
});

test('verify.sh fails, naming the recording, when one byte of recording.wav changes', () => {
  const dir = unzip(zipFile);
  flipByte(path.join(dir, 'recording.wav'), 100);
  const { status, out } = verifySh(dir);
  assert.notEqual(status, 0, out);
  assert.match(out, /recording\.wav: FAILED/, 'SHA256SUMS catches it');
  assert.match(out, /FAIL: recording\.wav: its sha256 is [0-9a-f]{64}, the recording row says/, 'the recording check catches it');
});

test('verify.sh fails, naming the event, when one byte of an event body changes (even with SHA256SUMS rewritten)', () => {
  const dir = unzip(zipFile);
  const seq = fs.readFileSync(path.join(dir, 'events/index.tsv'), 'utf8').split('\n')[3]?.split('\t')[0];
  assert.ok(seq);
  const file = path.join(dir, 'events', `${seq}.json`);
  const body = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, body.replace('"caller":"system:test"', '"caller":"system:tesT"'));
  const sums = spawnSync('sh', ['-c', "grep -v ' SHA256SUMS$' SHA256SUMS | awk '{print $2}' | xargs sha256sum > S && mv S SHA256SUMS"], { cwd: dir });
  assert.equal(sums.status, 0);
  const { status, out } = verifySh(dir);
  assert.notEqual(status, 0, out);
  assert.match(out, new RegExp(`FAIL: event ${seq}: events/${seq}\\.json .* hashes to [0-9a-f]{64}, not`));
  assert.doesNotMatch(out, /SHA256SUMS: the files/, 'the chain, not the checksums, caught it');
});

test('verify.sh fails when a checkpoint signature byte changes', () => {
  const dir = unzip(zipFile);
  const sig = fs.readdirSync(path.join(dir, 'checkpoints')).find((f) => f.endsWith('.sig'));
  assert.ok(sig);
  flipByte(path.join(dir, 'checkpoints', sig), 10);
  const { status, out } = verifySh(dir);
  assert.notEqual(status, 0, out);
  const n = sig.replace('.sig', '');
  assert.match(out, new RegExp(`FAIL: checkpoint ${n}: signature checkpoints/${n}\\.sig does not verify`));
});

test('verify.sh fails when a link digest is altered and the checksums rewritten', () => {
  const dir = unzip(zipFile);
  const file = path.join(dir, 'chain/links.tsv');
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const cols = lines[1]?.split('\t') ?? [];
  lines[1] = [cols[0], 'f'.repeat(64), cols[2]].join('\t');
  fs.writeFileSync(file, lines.join('\n'));
  spawnSync('sh', ['-c', "grep -v ' SHA256SUMS$' SHA256SUMS | awk '{print $2}' | xargs sha256sum > S && mv S SHA256SUMS"], { cwd: dir });
  const { status, out } = verifySh(dir);
  assert.notEqual(status, 0, out);
  assert.match(out, new RegExp(`FAIL: link ${cols[0]}: `));
});

test('a pack without a recording verifies and says so', async () => {
  const file = path.join(tmpDir('sb-zip-'), 'evidence.zip');
  fs.writeFileSync(file, await packFor(other, false));
  const dir = unzip(file);
  assert.ok(!fs.existsSync(path.join(dir, 'recording.wav')));
  const { status, out } = verifySh(dir);
  assert.equal(status, 0, out);
  assert.match(out, /no recording in this pack/);
});

test('the pack refuses a recording that is not the call\'s, and a call of another tenant', async () => {
  await assert.rejects(
    buildEvidencePack({ store, tenant: 'acme', callId: acme.callId, recording: { wav: Buffer.from('not it') }, transcriptVtt: '', transcriptJson: null, generatedAt: 0, generatedBy: 'x' }),
    /not a recording of call/,
  );
  await assert.rejects(
    buildEvidencePack({ store, tenant: 'acme', callId: other.callId, recording: null, transcriptVtt: '', transcriptJson: null, generatedAt: 0, generatedBy: 'x' }),
    /has no call/,
  );
});

test('buildCallProof: null across tenants; verifyCallProof passes, then catches each kind of tampering', () => {
  assert.equal(buildCallProof(store, 'acme', other.callId), null);
  assert.equal(buildCallProof(store, 'acme', 'call_nope'), null);
  const proof = buildCallProof(store, 'acme', acme.callId);
  assert.ok(proof);
  assert.ok(proof.events.every((e) => e.tenant === 'acme'));
  assert.ok(proof.checkpoints.every((c) => c.node === store.node));
  assert.ok((proof.checkpoints.at(-1)?.seq ?? 0) >= (proof.events.at(-1)?.seq ?? Infinity), 'a checkpoint covers the newest event');
  const good = verifyCallProof(proof, store.publicKeyPem);
  assert.deepEqual(good, { ok: true, problems: [] });

  const tamper = (edit: (p: CallProof) => void): string[] => {
    const copy = structuredClone(proof);
    edit(copy);
    const r = verifyCallProof(copy, store.publicKeyPem);
    assert.equal(r.ok, false);
    return r.problems;
  };
  const ev = proof.events[2];
  assert.ok(ev);
  const bodyEdit = tamper((p) => {
    const e = p.events[2];
    if (e) e.body = e.body.replace('"ok":true', '"ok":false');
  });
  assert.ok(bodyEdit.some((m) => m.startsWith(`event ${ev.seq}:`)), bodyEdit.join('\n'));
  tamper((p) => {
    const e = p.events[2];
    if (e) e.caller = 'someone-else';
  });
  tamper((p) => {
    const l = p.links[0];
    if (l) l.digest = '0'.repeat(64);
  });
  tamper((p) => p.links.splice(p.links.length - 1, 1));
  tamper((p) => {
    const c = p.checkpoints[0];
    if (c) c.signature = Buffer.from(Buffer.from(c.signature, 'base64').map((b, i) => (i === 5 ? b ^ 1 : b))).toString('base64');
  });
  tamper((p) => {
    const c = p.checkpoints[0];
    if (c) c.hash = 'a'.repeat(64);
  });
  const otherKey = crypto.generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  assert.equal(verifyCallProof(proof, otherKey).ok, false);
  assert.equal(verifyCallProof(proof, 'not a key').ok, false);
});
