/**
 * baresip (a real softphone, libre's TLS) calls the gateway over SIP/TLS: `;transport=tls` account and target,
 * the gateway's self-signed certificate (made with openssl in the test) as baresip's `sip_cafile`. The call is
 * answered over the TLS connection (the 200 OK's Contact says `transport=tls`), audio flows, baresip hangs up at
 * the end of its WAV with a BYE on the same connection, and the call row records transport `tls`.
 * Inside a private network namespace (fixed ports).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { consent_policy_created, number_added } from '../../schema/reducers.ts';
import { speechWav8k, writeBaresipConfig } from '../helpers/baresip.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { selfSigned } from '../helpers/sip-tls-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NUMBER = '+15553330000';
const GW_TLS_PORT = 5061;
const BARESIP_SIP_PORT = 5070;
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string, detail: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

if (insidePrivateNetwork(import.meta.filename, 120_000)) {
  test('baresip over TLS: answered on the TLS connection (transport=tls Contact), BYE over TLS, the call row says tls', { timeout: 90_000 }, async () => {
    const cert = selfSigned(tmpDir('sb-baresip-tls-'), 'gateway');
    const gw = await startTestGateway({
      env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_SIP_TLS_PORT: String(GW_TLS_PORT), SWITCHBOARD_SIP_TLS_CERT: cert.cert, SWITCHBOARD_SIP_TLS_KEY: cert.key, SWITCHBOARD_RTP_PORTS: '20000-20019', SWITCHBOARD_SIP_ENCRYPTION: `${NUMBER}=require/allow` },
    });
    open.push(() => gw.stop());
    const who = { tenant: 'default', caller: 'test' };
    const policy = resultOf<{ policy_id: string }>(await gw.store.submit(consent_policy_created, { name: 'record', mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 20_000, retries: 0 }, who));
    resultOf(await gw.store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: policy.policy_id }, who));

    const { dir } = writeBaresipConfig({ dial: '', micWav: speechWav8k([[null, 6]]), sipPort: BARESIP_SIP_PORT, rtpPorts: { low: 21000, high: 21019 }, quitAfterS: 40 });
    fs.appendFileSync(path.join(dir, 'config'), `sip_cafile ${cert.cert}\n`);
    fs.writeFileSync(path.join(dir, 'accounts'), `<sip:bot@127.0.0.1:${BARESIP_SIP_PORT};transport=tls>;regint=0;audio_codecs=PCMA,PCMU\n`);
    const target = `sip:${NUMBER.slice(1)}@127.0.0.1:${GW_TLS_PORT};transport=tls`;
    const child = spawn('baresip', ['-f', dir, '-s', '-e', `/dial ${target}`, '-t', '40'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    open.push(async () => void child.kill('SIGKILL'));
    let out = '';
    const keep = (d: Buffer): void => {
      out += d.toString().replace(/\x1b\[[0-9;]*m/g, '').replace(/\[\d+:\d\d:\d\d\] audio=\d+\/\d+ \(bit\/s\)\s*/g, '');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const said = (): string => `baresip output:\n${out.slice(-6000)}`;

    const call = () => gw.store.read('default').calls.find({ provider: 'sip' })[0];
    await waitFor(() => call()?.answered_at != null, 30_000, 'the call answered', said);
    await waitFor(() => call()?.state === 'ended', 40_000, 'baresip hung up at the end of its WAV', said);
    const row = call() ?? assert.fail('no call');
    assert.equal(row.end_reason, 'sip:bye', said());
    assert.equal(row.transport, 'tls');
    assert.equal(row.media_encryption, 'none');
    // baresip's SIP trace: the 200 OK came over TLS with a transport=tls Contact, and its BYE went over TLS.
    const ok = out.split('#').find((m) => /^\s*TLS 127\.0\.0\.1:5061 -> /.test(m) && /SIP\/2\.0 200 OK/.test(m) && /CSeq: \d+ INVITE/.test(m));
    assert.match(ok ?? '', new RegExp(`Contact: <sip:switchboard@127\\.0\\.0\\.1:${GW_TLS_PORT};transport=tls>`), said());
    assert.ok(out.split('#').some((m) => /^\s*TLS 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:5061\s+BYE /.test(m)), said());
    assert.match(out, /Call established/);
  });
}
