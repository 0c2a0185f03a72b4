/**
 * `switchboard replay [--data-dir DIR] [--json]` on a stopped gateway's data dir (README "Running it"): the tables
 * rebuilt from the log match the live ones (exit 0); a row changed outside the log is found (exit 1, naming the table).
 * The data dir is a real gateway's after a real Twilio call (consent, recording, transcript, agent turns).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { DB_FILE } from '../../store/store.ts';
import { startTestGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
const NUMBER = '+15553338888';

function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
    ),
  );
}

interface ReplayJson {
  ok: boolean;
  events: number;
  liveDigest: string;
  replayDigest: string;
  tables: Record<string, { live: number; replayed: number; same: boolean }>;
}

test('switchboard replay: OK (exit 0) on a stopped gateway after a call; a row changed outside the log → MISMATCH naming the table (exit 1)', { timeout: 90_000 }, async (t) => {
  const gw = await startTestGateway();
  t.after(() => gw.stop());
  const who = { tenant: 'default', caller: 'test' };
  const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 5000, retries: 0 }, who));
  resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
  const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550008888' });
  t.after(() => peer.close());
  assert.equal((await peer.dial()).kind, 'streaming');
  const call = () => gw.store.read('default').calls.findOne({ provider_call_id: peer.callSid });
  await peer.waitFor(() => call()?.consent_id != null, 8000, 'consent started');
  peer.sendDtmf('1');
  await peer.waitFor(() => gw.store.read('default').agent_actions.find({ call_id: call()!.id, status: 'succeeded' }).length >= 1, 15_000, 'the agent greeted');
  await peer.hangup();
  await peer.waitFor(() => call()?.state === 'ended', 8000, 'ended');
  await peer.waitFor(() => gw.store.read('default').recordings.find({ call_id: call()!.id })[0]?.status === 'finalized', 20_000, 'recording finalized');
  const callId = call()!.id;
  const head = gw.store.head.seq;
  await gw.stop();

  const ok = await cli('replay', '--data-dir', gw.dataDir);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, new RegExp(`^events replayed: ${head}$`, 'm'));
  const live = /^live digest:\s+(\S+)$/m.exec(ok.out)?.[1];
  assert.ok(live && live === /^replayed digest:\s+(\S+)$/m.exec(ok.out)?.[1], ok.out);
  assert.match(ok.out, /^replay: OK — same outcomes, same tables$/m);
  const json = await cli('replay', '--data-dir', gw.dataDir, '--json');
  assert.equal(json.code, 0, json.err);
  const report = JSON.parse(json.out) as ReplayJson;
  assert.equal(report.ok, true);
  assert.equal(report.events, head);
  assert.equal(report.tables.calls?.live, report.tables.calls?.replayed);
  assert.ok((report.tables.recordings?.live ?? 0) >= 1 && (report.tables.transcript_segments?.live ?? 0) >= 1, 'the call left rows to rebuild');

  // A row changed behind the log's back: the call's end reason.
  const db = new Database(path.join(gw.dataDir, DB_FILE));
  const changed = db.prepare(`UPDATE calls SET end_reason = 'edited by hand' WHERE id = ?`).run(callId).changes;
  db.close();
  assert.equal(changed, 1);
  const bad = await cli('replay', '--data-dir', gw.dataDir);
  assert.equal(bad.code, 1, bad.out + bad.err);
  assert.match(bad.out, /^ {2}table calls differs \(live 1 rows, replayed 1\)$/m);
  assert.doesNotMatch(bad.out, /table recordings differs/);
  assert.match(bad.out, /^replay: MISMATCH$/m);
  const badJson = JSON.parse((await cli('replay', '--data-dir', gw.dataDir, '--json')).out) as ReplayJson;
  assert.equal(badJson.ok, false);
  assert.equal(badJson.tables.calls?.same, false);
  assert.notEqual(badJson.liveDigest, badJson.replayDigest);
});
