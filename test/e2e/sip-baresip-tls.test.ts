/**
 * baresip (a real softphone, libre's TLS) calls the gateway over SIP/TLS: `;transport=tls` account and target,
 * the gateway's self-signed certificate (made with openssl in the test) as baresip's `sip_cafile`. The call is
 * answered over the TLS connection (the 200 OK's Contact says `transport=tls`), audio flows, baresip hangs up at
 * the end of its WAV with a BYE on the same connection, and the call row records transport `tls`.
 * Inside a private network namespace (fixed ports).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { speechWav8k, startBaresip } from '../helpers/baresip.ts';
import { seedNumber, waitFor } from '../helpers/baresip-secure.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { selfSigned } from '../helpers/sip-tls-ua.ts';
import { tmpDir } from '../helpers/tmp.ts';

const NUMBER = '+15553330000';
const GW_TLS_PORT = 5061;
const BARESIP_SIP_PORT = 5070;
const open: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const close of open.reverse()) await close().catch(() => undefined);
});

if (insidePrivateNetwork(import.meta.filename, 120_000)) {
  test('baresip over TLS: answered on the TLS connection (transport=tls Contact), BYE over TLS, the call row says tls', { timeout: 90_000 }, async () => {
    const cert = selfSigned(tmpDir('sb-baresip-tls-'), 'gateway');
    const gw = await startTestGateway({
      env: { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_SIP_TLS_PORT: String(GW_TLS_PORT), SWITCHBOARD_SIP_TLS_CERT: cert.cert, SWITCHBOARD_SIP_TLS_KEY: cert.key, SWITCHBOARD_RTP_PORTS: '20000-20019', SWITCHBOARD_SIP_ENCRYPTION: `${NUMBER}=require/allow` },
    });
    open.push(() => gw.stop());
    await seedNumber(gw, NUMBER);

    const target = `sip:${NUMBER.slice(1)}@127.0.0.1:${GW_TLS_PORT};transport=tls`;
    const phone = startBaresip({ dial: target, micWav: speechWav8k([[null, 6]]), sipPort: BARESIP_SIP_PORT, rtpPorts: { low: 21000, high: 21019 }, quitAfterS: 40, tlsCaFile: cert.cert });
    open.push(() => phone.stop());
    const said = (): string => `baresip output:\n${phone.output().slice(-6000)}`;

    const call = () => gw.store.read('default').calls.find({ provider: 'sip' })[0];
    await waitFor(() => call()?.answered_at != null, 30_000, 'the call answered', said);
    await waitFor(() => call()?.state === 'ended', 40_000, 'baresip hung up at the end of its WAV', said);
    const row = call() ?? assert.fail('no call');
    assert.equal(row.end_reason, 'sip:bye', said());
    assert.equal(row.transport, 'tls');
    assert.equal(row.media_encryption, 'none');
    // baresip's SIP trace: the 200 OK came over TLS with a transport=tls Contact, and its BYE went over TLS.
    const out = phone.output();
    const ok = out.split('#').find((m) => /^\s*TLS 127\.0\.0\.1:5061 -> /.test(m) && /SIP\/2\.0 200 OK/.test(m) && /CSeq: \d+ INVITE/.test(m));
    assert.match(ok ?? '', new RegExp(`Contact: <sip:switchboard@127\\.0\\.0\\.1:${GW_TLS_PORT};transport=tls>`), said());
    assert.ok(out.split('#').some((m) => /^\s*TLS 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:5061\s+BYE /.test(m)), said());
    assert.match(out, /Call established/);
  });
}
