/**
 * SIP/TLS setup rate (issue 24): how many new TLS connections a node takes per second, each a full handshake
 * (TLS 1.3, P-256 certificate made with openssl here) then an OPTIONS answered 200 over it, then closed — beside
 * the same over plain TCP, against the same SIP stack (ingress/sip: SipUas + tls.ts) in the same run.
 *
 *   sip_tls.setups_per_s   TLS connections set up and answered per second, BENCH_SIP_TLS_INFLIGHT at once;
 *                          baseline = the same over TCP
 *   sip_tls.setup_p99_ms   connect → 200 OK over TLS, p99; baseline = TCP
 *
 * Client and server share this process (and the machine's cores): the figures are a floor for the server.
 * Env: BENCH_SIP_TLS_S (5 s per transport), BENCH_SIP_TLS_INFLIGHT (16).
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import fs from 'node:fs';
import pino from 'pino';
import { SipTlsListener } from '../ingress/sip/tls.ts';
import { SipUas } from '../ingress/sip/uas.ts';
import { tmpDir } from '../test/helpers/tmp.ts';
import { log, now, report } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SIP_TLS_S ?? 5);
const INFLIGHT = Number(process.env.BENCH_SIP_TLS_INFLIGHT ?? 16);

const dir = tmpDir('sb-bench-tls-');
const cert = path.join(dir, 'c.pem');
const key = path.join(dir, 'k.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=bench', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
const ca = fs.readFileSync(cert);
const logger = pino({ level: 'silent' });
const noop = (): void => undefined;
const uas = await SipUas.start({ host: '127.0.0.1', port: 0, logger, handler: { invite: noop, ack: noop, bye: noop, info: noop, cancel: noop } });
const listener = await SipTlsListener.listen({ port: 0, certFile: cert, keyFile: key }, '127.0.0.1', uas.transport, logger);

let n = 0;
function options(local: string): Buffer {
  n++;
  return Buffer.from(
    `OPTIONS sip:bench@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS ${local};branch=z9hG4bKb${n}\r\nMax-Forwards: 70\r\nFrom: <sip:b@127.0.0.1>;tag=t${n}\r\n` +
      `To: <sip:bench@127.0.0.1>\r\nCall-ID: bench-${n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
  );
}

/** One setup: connect (and handshake), OPTIONS, wait for the 200, close. Resolves its time in ms. */
function setup(kind: 'tls' | 'tcp'): Promise<number> {
  const t0 = now();
  return new Promise((resolve, reject) => {
    const sock = kind === 'tls' ? tls.connect({ host: '127.0.0.1', port: listener.port, ca }) : net.connect(uas.port, '127.0.0.1');
    sock.once(kind === 'tls' ? 'secureConnect' : 'connect', () => sock.write(options(`127.0.0.1:${sock.localPort}`)));
    let got = '';
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/^SIP\/2\.0 200 /.test(got) && got.includes('\r\n\r\n')) {
        sock.destroy();
        resolve(now() - t0);
      }
    });
    sock.once('error', reject);
  });
}

async function run(kind: 'tls' | 'tcp'): Promise<{ rate: number; p99: number }> {
  const times: number[] = [];
  const end = now() + SECONDS * 1000;
  const start = now();
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (now() < end) times.push(await setup(kind));
    }),
  );
  times.sort((a, b) => a - b);
  return { rate: times.length / ((now() - start) / 1000), p99: times[Math.floor(times.length * 0.99)] ?? 0 };
}

try {
  const tcp = await run('tcp');
  const tlsRun = await run('tls');
  log(`TLS ${tlsRun.rate.toFixed(0)}/s (p99 ${tlsRun.p99.toFixed(1)} ms), TCP ${tcp.rate.toFixed(0)}/s (p99 ${tcp.p99.toFixed(1)} ms)`);
  const note = `${INFLIGHT} in flight, ${SECONDS} s each; client and server in one process`;
  report({ figure: 'sip_tls.setups_per_s', value: Math.round(tlsRun.rate), unit: 'setups/s', baseline: Math.round(tcp.rate), note });
  report({ figure: 'sip_tls.setup_p99_ms', value: Number(tlsRun.p99.toFixed(2)), unit: 'ms', baseline: Number(tcp.p99.toFixed(2)), note });
} finally {
  listener.close();
  await uas.close();
}
