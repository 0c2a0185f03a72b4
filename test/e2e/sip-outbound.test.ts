/**
 * Outbound (agent-initiated) SIP calls against sipp as the called party, in a
 * private network namespace (fixed ports for sipp are safe there):
 *
 *  - (the inbound trunk allowlist, SWITCHBOARD_SIP_ALLOW, admits none of the callees: their BYEs pass as in-dialog)
 *  - POST /v1/calls → 202; sipp rings, answers PCMA, presses 1 (opt-in consent), talks, hangs up: the call row
 *    goes ringing → answered → consenting → active → ended (sip:bye), direction outbound, and its recording
 *    carries the agent's audio;
 *  - our side hangs up (a strict consent policy, nobody presses 1): BYE inside the dialog, to the callee's Contact;
 *  - a 401 challenge is answered once with digest credentials (MD5, qop=auth) that sipp's verifyauth accepts; with a
 *    wrong password the second 401 ends the call `sip:auth-failed` after exactly one retry;
 *  - a reliable 180 (Require: 100rel) is PRACKed; a 2xx with Session-Expires;refresher=uac makes us refresh (UPDATE);
 *  - a 422 (Min-SE 3600) gets one more INVITE with Session-Expires and Min-SE 3600 (RFC 4028 §7.4); a second 422 ends
 *    the call `sip:session-interval-too-small`;
 *  - 486 Busy Here → ended `sip:busy`, the 486 ACKed; ringing past the dial timeout → CANCEL, 487, `sip:no-answer`;
 *  - API validation: a bad body is 400 naming the field, a telephone number with no SIP trunk for the from-number 422
 *    `no_sip_trunk`, an unknown from-number 404, a role without `calls:originate` 403 — and nothing is sent;
 *  - `switchboard call --from N --to sip:… --wait` against the running gateway.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { decryptRecording, loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { api, userToken } from '../helpers/api.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas } from '../helpers/sipp-uas.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { call_dialed, consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15554440000';
/** A number whose opt-in policy hangs up when nobody answers the consent question (3 s). */
const STRICT_NUMBER = '+15554440001';
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
type Gw = Awaited<ReturnType<typeof startTestGateway>>;

if (insidePrivateNetwork(import.meta.filename, 300_000)) {
  let gw: Gw;
  before(async () => {
    const dir = tmpDir('sb-outbound-');
    const creds = path.join(dir, 'outbound.json');
    // 127.0.0.2 gets the wrong password: the same sipp scenario then refuses it. The trunk allowlist admits none of
    // the callees: their in-dialog requests (BYE) must pass all the same.
    fs.writeFileSync(
      creds,
      JSON.stringify({ '127.0.0.1': { username: 'agent7', password: 'right-password' }, '127.0.0.2': { username: 'agent7', password: 'wrong-password' } }),
    );
    gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31000-31199', SWITCHBOARD_SIP_OUTBOUND: creds, SWITCHBOARD_SIP_DIAL_TIMEOUT_MS: '4000', SWITCHBOARD_SIP_ALLOW: '192.0.2.1/32' } });
    const who = { tenant: 'default', caller: 'test' };
    const p = resultOf<{ policy_id: string }>(
      await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls. Press 1 to agree.', timeout_ms: 25_000, retries: 0 }, who),
    );
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
    const strict = resultOf<{ policy_id: string }>(
      await gw.store.submit(consent_policy_created, { name: 'strict', mode: 'opt-in', disclosure_text: 'Press 1.', timeout_ms: 3000, retries: 0, on_decline: 'hangup' }, who),
    );
    resultOf(await gw.store.submit(number_added, { number: STRICT_NUMBER, agent: 'default', consent_policy_id: strict.policy_id }, who));
  });
  after(async () => {
    await gw?.stop();
  });

  const read = () => gw.store.read('default');
  const dial = (to: string, token: string = ADMIN_TOKEN, body: Record<string, unknown> = { from: NUMBER, to }) =>
    api<{ call_id: string; state: string; sip_call_id: string; error?: { code: string; message: string } }>(gw.publicUrl, 'POST', '/v1/calls', { token, body });
  const states = (callId: string): string[] =>
    [...gw.store.events()]
      .filter((e) => e.outcome.ok && ((e.args as { call_id?: string }).call_id === callId || (e.outcome.result as { call_id?: string } | undefined)?.call_id === callId))
      .map((e) => e.reducer);

  async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const ended = (callId: string, ms = 30_000) => waitFor(() => read().calls.get(callId)?.state === 'ended' && read().calls.get(callId), ms, `call ${callId} ended`);

  function agentEnergy(recordingId: string): number {
    const rec = read().recordings.get(recordingId)!;
    const plain = decryptRecording(fs.readFileSync(new FsBlobStore(gw.dataDir).pathOf(rec.uri!)), loadOrCreateMasterKey(gw.dataDir));
    const file = path.join(tmpDir('sb-out-rec-'), `r.${rec.format}`);
    fs.writeFileSync(file, plain);
    const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '2', '-ar', '8000', '-'], { maxBuffer: 64 * 1024 * 1024 });
    let right = 0;
    for (let i = 0; i + 3 < pcm.length; i += 4) right += Math.abs(pcm.readInt16LE(i + 2));
    return right / (pcm.length / 4);
  }

  test('answered (180, 200 PCMA): consent by DTMF 1, the agent talks, the callee hangs up; the call is outbound, recorded and ended sip:bye', { timeout: 90_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_answer_pcma.xml', ip: '127.0.0.1', port: 5070 });
    const r = await dial('sip:bob@127.0.0.1:5070');
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.headers.get('location'), `/v1/calls/${r.body.call_id}`);
    assert.equal(read().calls.get(r.body.call_id)?.state, 'ringing');
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const call = await ended(r.body.call_id);
    assert.equal(call.direction, 'outbound');
    assert.equal(call.provider, 'sip');
    assert.equal(call.from_uri, NUMBER);
    assert.equal(call.to_uri, 'sip:bob@127.0.0.1:5070');
    assert.equal(call.end_reason, 'sip:bye');
    assert.ok(call.answered_at !== null && call.active_at !== null);
    const seq = states(call.id);
    for (const [a, b] of [['call_dialed', 'call_answered'], ['call_answered', 'call_media_connected'], ['call_media_connected', 'consent_started'], ['consent_started', 'recording_started'], ['recording_started', 'call_ended']]) {
      assert.ok(seq.indexOf(a!) >= 0 && seq.indexOf(a!) < seq.indexOf(b!), `${a} before ${b}: ${seq.join(',')}`);
    }
    // Our INVITE: PCMU, PCMA and telephone-event offered; the answer picked PCMA.
    const invite = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('INVITE '))!;
    assert.match(invite.text, /m=audio \d+ RTP\/AVP 0 8 101/);
    assert.match(invite.text, /^From: <sip:\+15554440000@127\.0\.0\.1>;tag=/m);
    assert.equal(read().legs.find({ call_id: call.id })[0]?.codec, 'PCMA');
    const ack = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('ACK '));
    assert.ok(ack, 'the 2xx was ACKed');
    assert.match(ack.text, /CSeq:\s*1 ACK/);
    assert.equal(read().consents.get(call.consent_id!)?.outcome, 'granted');
    await gw.recordings.idle();
    const rec = read().recordings.find({ call_id: call.id })[0];
    assert.ok(rec, 'a recording row after consent');
    await waitFor(() => read().recordings.get(rec.id)?.status === 'finalized', 20_000, 'recording finalized');
    const energy = agentEnergy(rec.id);
    assert.ok(energy > 20, `the agent's audio is in the recording (${energy})`);
    assert.ok(gw.store.verify().ok);
  });

  test('our side hangs up (consent not given, policy hangup): BYE in the dialog (CSeq 2, tags swapped, to the Contact), the call ends', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_wait_bye.xml', ip: '127.0.0.1', port: 5076 });
    const r = await dial('sip:frank@127.0.0.1:5076', ADMIN_TOKEN, { from: STRICT_NUMBER, to: 'sip:frank@127.0.0.1:5076' });
    assert.equal(r.status, 202);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const call = await ended(r.body.call_id);
    assert.ok(call.answered_at !== null);
    assert.match(call.end_reason ?? '', /consent/);
    const invite = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('INVITE '))!;
    const bye = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('BYE '));
    assert.ok(bye, 'BYE from our side');
    assert.match(bye.first, /^BYE sip:bob@127\.0\.0\.1:5076;transport=UDP SIP\/2\.0$/i, 'to the Contact of the 200');
    assert.match(bye.text, /^CSeq:\s*2 BYE/im);
    const fromTag = /^From:.*;tag=(\S+)/im.exec(invite.text)?.[1];
    assert.ok(fromTag);
    assert.match(bye.text, new RegExp(`^From:.*;tag=${fromTag}`, 'im'));
    assert.match(bye.text, /^To:.*;tag=\S*SIPpTag01/im);
  });

  test('401 challenge: answered once with digest credentials (qop=auth, CSeq 2, same Call-ID and From tag) that sipp verifies', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_auth.xml', ip: '127.0.0.1', port: 5071 });
    const r = await dial('sip:bob@127.0.0.1:5071');
    assert.equal(r.status, 202);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const invites = run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
    assert.equal(invites.length, 2, 'the INVITE and one answer to the challenge');
    const header = (text: string, name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(text)?.[1]?.trim();
    assert.equal(header(invites[1]!.text, 'Call-ID'), header(invites[0]!.text, 'Call-ID'));
    assert.equal(header(invites[1]!.text, 'From'), header(invites[0]!.text, 'From'));
    assert.match(header(invites[1]!.text, 'CSeq') ?? '', /^2 INVITE$/);
    const auth = header(invites[1]!.text, 'Authorization') ?? '';
    assert.match(auth, /^Digest /);
    assert.match(auth, /username="agent7"/);
    assert.match(auth, /qop=auth/);
    assert.match(auth, /nc=00000001/);
    assert.match(auth, /cnonce="[0-9a-f]+"/);
    assert.match(auth, /opaque="op4que"/);
    assert.doesNotMatch(auth, /right-password/);
    const call = await ended(r.body.call_id);
    assert.equal(call.end_reason, 'sip:bye', 'verifyauth accepted: answered, then the callee hung up');
    assert.ok(call.answered_at !== null);
  });

  test('a wrong password: the second 401 ends the call sip:auth-failed, with exactly one retry', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_auth.xml', ip: '127.0.0.2', port: 5072 });
    const r = await dial('sip:bob@127.0.0.2:5072');
    assert.equal(r.status, 202);
    const call = await ended(r.body.call_id);
    assert.equal(call.end_reason, 'sip:auth-failed');
    assert.equal(call.answered_at, null);
    const run = await sipp.done;
    assert.equal(run.code, 0, `no third INVITE reached sipp: ${run.output}`);
    const received = run.messages.filter((m) => m.dir === 'received').map((m) => m.first.split(' ')[0]);
    assert.deepEqual(received, ['INVITE', 'ACK', 'INVITE', 'ACK']);
  });

  test('a reliable 180 (100rel) gets a PRACK; the 2xx Session-Expires;refresher=uac makes us refresh with UPDATE', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_100rel_timer.xml', ip: '127.0.0.1', port: 5079 });
    const r = await dial('sip:dave@127.0.0.1:5079');
    assert.equal(r.status, 202);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const got = run.messages.filter((m) => m.dir === 'received').map((m) => m.first.split(' ')[0]);
    assert.deepEqual(got.slice(0, 5), ['INVITE', 'PRACK', 'ACK', 'UPDATE', 'SIP/2.0']);
    const prack = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('PRACK '))!;
    const update = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('UPDATE '))!;
    const cseq = (t: string) => Number(/^CSeq:\s*(\d+)/im.exec(t)?.[1]);
    assert.ok(cseq(update.text) > cseq(prack.text), 'the confirmed dialog continues above the PRACK CSeq');
    assert.match(update.text, /Session-Expires:\s*6;refresher=uac/i);
    assert.equal((await ended(r.body.call_id)).end_reason, 'sip:bye');
  });

  test('422 with Min-SE 3600: the INVITE goes once more (CSeq 2) with Session-Expires and Min-SE 3600, which sipp checks; the call is answered', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_422_then_200.xml', ip: '127.0.0.1', port: 5080 });
    const r = await dial('sip:fay@127.0.0.1:5080');
    assert.equal(r.status, 202);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const invites = run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
    assert.deepEqual(invites.map((m) => Number(/^CSeq:\s*(\d+)/im.exec(m.text)?.[1])), [1, 2]);
    assert.equal(/^Call-ID:\s*(\S+)/im.exec(invites[1]!.text)?.[1], /^Call-ID:\s*(\S+)/im.exec(invites[0]!.text)?.[1]);
    const call = await ended(r.body.call_id);
    assert.ok(call.answered_at !== null);
    assert.equal(call.end_reason, 'sip:bye');
  });

  test('a second 422: no third INVITE, the call ends sip:session-interval-too-small without an answer', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_422_twice.xml', ip: '127.0.0.1', port: 5081 });
    const r = await dial('sip:gus@127.0.0.1:5081');
    assert.equal(r.status, 202);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const call = await ended(r.body.call_id);
    assert.equal(call.end_reason, 'sip:session-interval-too-small');
    assert.equal(call.answered_at, null);
    assert.equal(run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('INVITE ')).length, 2);
  });

  test('486 Busy Here: ACKed, the call ends sip:busy without an answer', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_busy.xml', ip: '127.0.0.1', port: 5073 });
    const r = await dial('sip:carol@127.0.0.1:5073');
    assert.equal(r.status, 202);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const call = await ended(r.body.call_id);
    assert.equal(call.end_reason, 'sip:busy');
    assert.equal(call.answered_at, null);
    assert.deepEqual(states(call.id), ['call_dialed', 'call_ended']);
    const ack = run.messages.find((m) => m.dir === 'received' && m.first.startsWith('ACK '));
    assert.ok(ack && /CSeq:\s*1 ACK/i.test(ack.text) && /^To:.*;tag=/im.test(ack.text), 'the 486 is ACKed with its To tag');
  });

  test('over TCP (;transport=tcp): the INVITE goes on a connection (Via TCP, no retransmission), the 486 is ACKed on it', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_busy.xml', ip: '127.0.0.1', port: 5078, transport: 't1' });
    const r = await dial('sip:hal@127.0.0.1:5078;transport=tcp');
    assert.equal(r.status, 202);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const call = await ended(r.body.call_id);
    assert.equal(call.end_reason, 'sip:busy');
    const invites = run.messages.filter((m) => m.dir === 'received' && m.first.startsWith('INVITE '));
    assert.equal(invites.length, 1);
    assert.match(invites[0]!.text, /^Via: SIP\/2\.0\/TCP /m);
    assert.match(invites[0]!.text, /^Contact: <sip:switchboard@127\.0\.0\.1:5060;transport=tcp>/m);
    assert.ok(run.messages.some((m) => m.dir === 'received' && m.first.startsWith('ACK ')));
  });

  test('no answer within SWITCHBOARD_SIP_DIAL_TIMEOUT_MS: CANCEL (same branch, CSeq 1 CANCEL), 487 ACKed, the call ends sip:no-answer', { timeout: 60_000 }, async () => {
    const sipp = await startSippUas({ scenario: 'uas_ring_cancel.xml', ip: '127.0.0.1', port: 5077 });
    const r = await dial('sip:gina@127.0.0.1:5077');
    assert.equal(r.status, 202);
    const run = await sipp.done;
    assert.equal(run.code, 0, run.output);
    const call = await ended(r.body.call_id);
    assert.equal(call.end_reason, 'sip:no-answer');
    assert.equal(call.answered_at, null);
    const got = run.messages.filter((m) => m.dir === 'received');
    const invite = got.find((m) => m.first.startsWith('INVITE '))!;
    const cancel = got.find((m) => m.first.startsWith('CANCEL '));
    assert.ok(cancel, 'CANCEL sent');
    const branch = (t: string) => /^Via:.*;branch=([^;\s]+)/im.exec(t)?.[1];
    assert.equal(branch(cancel.text), branch(invite.text));
    assert.match(cancel.text, /^CSeq:\s*1 CANCEL/im);
    assert.ok(cancel.at - invite.at >= 3500 && cancel.at - invite.at < 6000, `CANCEL ${cancel.at - invite.at} ms after the INVITE`);
    assert.ok(got.some((m) => m.first.startsWith('ACK ') && /CSeq:\s*1 ACK/i.test(m.text)), 'the 487 is ACKed');
  });

  test('API validation: 400 naming the field, 404 for a number not ours, 403 without calls:originate; nothing is written', async () => {
    const head = gw.store.head.seq;
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ to: 'sip:bob@127.0.0.1' }, /from/],
      [{ from: NUMBER }, /to/],
      [{ from: NUMBER, to: 'tel:5550001111' }, /to: .*E\.164/],
      [{ from: NUMBER, to: '+0550001111' }, /to: must be a sip: URI/],
      [{ from: NUMBER, to: 'sip:bob@bad host' }, /to: is not a valid sip: URI/],
      [{ from: NUMBER, to: 'sip:bob@127.0.0.1', agent: 'Bad Name!' }, /agent/],
      [{ from: NUMBER, to: 'sip:bob@127.0.0.1', extra: 1 }, /extra|unrecognized/i],
    ];
    for (const [body, field] of bad) {
      const r = await dial('', ADMIN_TOKEN, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error?.code, 'invalid_request');
      assert.match(r.body.error?.message ?? '', field);
    }
    // A telephone number from a SIP number needs its trunk (none here: test/e2e/sip-outbound-trunk.test.ts has one).
    for (const to of ['tel:+15550001111', '+15550001111']) {
      const r = await dial('', ADMIN_TOKEN, { from: NUMBER, to });
      assert.equal(r.status, 422, to);
      assert.equal(r.body.error?.code, 'no_sip_trunk');
    }
    const unknown = await dial('', ADMIN_TOKEN, { from: '+15559999999', to: 'sip:bob@127.0.0.1' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.code, 'number_not_found');
    for (const role of ['compliance', 'auditor'] as const) {
      const t = await userToken(gw.publicUrl, role);
      const before = gw.store.head.seq;
      const r = await dial('sip:bob@127.0.0.1', t.token);
      assert.equal(r.status, 403, role);
      assert.equal(gw.store.head.seq, before, `${role}: refused, nothing written`);
      // The store refuses it too, even bypassing the API.
      const direct = await gw.store.submit(call_dialed, { provider: 'sip', provider_call_id: `x-${role}`, from: NUMBER, to: 'sip:bob@127.0.0.1' }, { tenant: 'default', caller: `user:${t.userId}` });
      assert.equal(!direct.outcome.ok && direct.outcome.error.code, 'forbidden');
    }
    assert.equal(read().calls.find({ direction: 'outbound', state: 'ringing' }).length, 0);
    assert.ok(gw.store.head.seq > head, 'only the users, tokens and refused direct commands were written');
  });

  test('the CLI: `switchboard call --from N --to sip:… --wait` prints the call id and follows it (answered → exit 0; busy → exit 1)', { timeout: 90_000 }, async () => {
    const dev = await userToken(gw.publicUrl, 'developer');
    const cli = (args: string[]) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        execFile(process.execPath, [BIN, ...args], { env: { ...process.env, SWITCHBOARD_URL: gw.publicUrl, SWITCHBOARD_TOKEN: dev.token } }, (error, stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr }),
        );
      });
    let sipp = await startSippUas({ scenario: 'uas_answer_short.xml', ip: '127.0.0.1', port: 5074 });
    const ok = await cli(['call', '--from', NUMBER, '--to', 'sip:dave@127.0.0.1:5074', '--wait']);
    assert.equal(ok.code, 0, ok.out + ok.err);
    const id = /^(call_\S+|\S+)$/m.exec(ok.out)?.[1] ?? '';
    const row = read().calls.get(ok.out.split('\n')[0]!.trim());
    assert.ok(row, `first line is the call id: ${ok.out}`);
    assert.equal(row.direction, 'outbound');
    assert.match(ok.out, /answered/);
    assert.ok(id.length > 0);
    assert.equal((await sipp.done).code, 0);
    sipp = await startSippUas({ scenario: 'uas_busy.xml', ip: '127.0.0.1', port: 5075 });
    const busy = await cli(['call', '--from', NUMBER, '--to', 'sip:erin@127.0.0.1:5075', '--wait']);
    assert.equal(busy.code, 1, busy.out + busy.err);
    assert.match(busy.out, /sip:busy/);
    assert.equal((await sipp.done).code, 0);
    // `call ID` still shows one call; --from without --to is a usage error (exit 2).
    const show = await cli(['call', row.id, '--json']);
    assert.equal(show.code, 0, show.err);
    assert.equal((JSON.parse(show.out) as { call: { id: string } }).call.id, row.id);
    const usage = await cli(['call', '--from', NUMBER]);
    assert.equal(usage.code, 2, usage.out + usage.err);
    assert.match(usage.err, /--to/);
  });
}
