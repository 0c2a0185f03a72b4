/**
 * Outbound SRTP (UAC): a route with `"srtp": "require"` in SWITCHBOARD_SIP_OUTBOUND makes the gateway offer
 * RTP/SAVP with a=crypto lines (AEAD_AES_128_GCM, AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32); baresip as the called party
 * (`mediaenc=srtp-mand`, auto-answer) takes the first, AES-GCM (libre’s implementation against werift’s), and media runs encrypted both ways: baresip decrypts the
 * disclosure it hears (its decoder dump has speech) and the gateway decrypts baresip's microphone (the
 * recording's caller channel has speech). Runs inside `unshare -n`: fixed ports.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { decryptRecording, loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { api } from '../helpers/api.ts';
import { startBaresip, speechWav8k } from '../helpers/baresip.ts';
import { ADMIN_TOKEN, startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';

const NUMBER = '+15554440000';
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string, detail: () => string = () => ''): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Mean absolute amplitude of channel `c` of an audio file decoded to 8 kHz. */
function energy(file: string, channels: 1 | 2, c: number): number {
  const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', String(channels), '-ar', '8000', '-'], { maxBuffer: 64 * 1024 * 1024 });
  let sum = 0;
  const frames = Math.floor(pcm.length / (2 * channels));
  for (let f = 0; f < frames; f++) sum += Math.abs(pcm.readInt16LE(2 * (f * channels + c)));
  return frames ? sum / frames : 0;
}

if (insidePrivateNetwork(import.meta.filename, 150_000)) {
  test('outbound call on a route requiring SRTP: RTP/SAVP offered, baresip answers with a=crypto, media decrypts both ways', { timeout: 120_000 }, async () => {
    const creds = path.join(tmpDir('sb-out-srtp-'), 'outbound.json');
    fs.writeFileSync(creds, JSON.stringify({ '127.0.0.1': { username: 'agent7', password: 'unused', encryption: 'allow/require' } }));
    const gw = await startTestGateway({ env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '31000-31199', SWITCHBOARD_SIP_OUTBOUND: creds } });
    open.push(() => gw.stop());
    const who = { tenant: 'default', caller: 'test' };
    const p = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'This call is recorded for quality and training purposes.' }, who));
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));

    const phone = startBaresip({ micWav: speechWav8k([[null, 1], ...Array.from({ length: 4 }, (): [string, number] => ['hello this is bob speaking from the far end of the line', 1]), ['still bob here on the far end', 6]]), sipPort: 5070, rtpPorts: { low: 21000, high: 21019 }, quitAfterS: 60, dumpAudio: true, mediaenc: 'srtp-mand', autoAnswer: true });
    open.push(() => phone.stop());
    const said = (): string => `baresip output:\n${phone.output().slice(-6000)}`;
    await waitFor(() => /baresip is ready/.test(phone.output()), 10_000, 'baresip ready', said);

    const r = await api<{ call_id: string }>(gw.publicUrl, 'POST', '/v1/calls', { token: ADMIN_TOKEN, body: { from: NUMBER, to: 'sip:bot@127.0.0.1:5070' } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const read = () => gw.store.read('default');
    await waitFor(() => read().calls.get(r.body.call_id)?.answered_at != null, 20_000, 'the call answered', said);
    const out = phone.output();
    assert.match(out, /m=audio \d+ RTP\/SAVP 0 8 101\r?\na=crypto:1 AEAD_AES_128_GCM inline:\S+\r?\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:/, said());
    await waitFor(() => /SRTP is Enabled/.test(phone.output()), 5000, 'baresip SRTP up', said);
    const leg = await waitFor(() => read().legs.find({ call_id: r.body.call_id })[0], 10_000, 'the leg');
    const resume = leg.resume as { mediaEncryption?: string; srtp?: { suite: string } };
    assert.equal(resume.mediaEncryption, 'srtp');
    assert.equal(resume.srtp?.suite, 'AEAD_AES_128_GCM', 'baresip takes our first line: AES-GCM, werift on our side and libre on its side');
    assert.match(phone.output(), /SRTP is Enabled \(cryptosuite=AEAD_AES_128_GCM\)/);

    await waitFor(() => read().calls.get(r.body.call_id)?.state === 'ended', 60_000, 'baresip hung up at the end of its WAV', said);
    await phone.stop();
    const heard = phone.dumps('dec');
    assert.equal(heard.length, 1, said());
    const heardEnergy = energy(heard[0]!, 1, 0);
    assert.ok(heardEnergy > 30, `baresip decrypted the gateway's SRTP: it heard the disclosure (${heardEnergy})`);
    await gw.recordings.idle();
    const rec = await waitFor(() => read().recordings.find({ call_id: r.body.call_id }).find((x) => x.status === 'finalized'), 20_000, 'recording finalized');
    const file = path.join(tmpDir('sb-out-srtp-rec-'), `r.${rec.format}`);
    fs.writeFileSync(file, decryptRecording(fs.readFileSync(new FsBlobStore(gw.dataDir).pathOf(rec.uri!)), loadOrCreateMasterKey(gw.dataDir)));
    const callerEnergy = energy(file, 2, 0);
    assert.ok(callerEnergy > 30, `the gateway decrypted baresip's SRTP: its speech is on the caller channel (${callerEnergy})`);
    assert.ok(gw.store.verify().ok);
  });
}
