/**
 * SIP fuzzing against the real `switchboard start` (a child process, inside a
 * private network namespace so that responses routed by mutated Vias never
 * leave the machine): a few thousand mutations per run of the RFC 4475 torture
 * corpus and of a valid INVITE with SDP — byte flips, truncation, duplicated and
 * huge headers, bad Content-Length, bad SDP lines, ports and addresses out of
 * range, long whitespace runs, delimiter storms, spliced messages — over UDP and
 * TCP. After every batch the node must still answer OPTIONS and /healthz, the
 * process must be alive, and its log must hold no escaped exception.
 *
 * The PRNG is seeded; the seed is printed, and SWITCHBOARD_FUZZ_SEED replays a
 * run (SWITCHBOARD_FUZZ_COUNT changes its size).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { parseMessage } from '../../ingress/sip/message.ts';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '15557440000';
const CORPUS_DIR = path.join(import.meta.dirname, '..', 'fixtures', 'sip', 'rfc4475');
const SEED = Number(process.env.SWITCHBOARD_FUZZ_SEED ?? crypto.randomInt(1, 2 ** 31));
const TOTAL = Number(process.env.SWITCHBOARD_FUZZ_COUNT ?? 3000);
const BATCHES = 10;

/** mulberry32: small, seedable, good enough to pick mutations. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)] as T };
}
type Rng = ReturnType<typeof prng>;

function validInvite(rng: Rng, transport: 'UDP' | 'TCP', local: { address: string; port: number }): string {
  const id = rng.int(2 ** 30).toString(36);
  const sdp = [
    'v=0', `o=- ${id} 1 IN IP4 ${local.address}`, 's=fuzz', `c=IN IP4 ${local.address}`, 't=0 0',
    `m=audio ${20000 + 2 * rng.int(5000)} RTP/AVP 0 8 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-15', 'a=ptime:20', 'a=sendrecv', '',
  ].join('\r\n');
  return [
    `INVITE sip:${NUMBER}@127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/${transport} ${local.address}:${local.port};branch=z9hG4bK${id};rport`,
    'Max-Forwards: 70',
    `From: "Fuzz" <sip:fuzz@${local.address}>;tag=${id}`,
    `To: <sip:${NUMBER}@127.0.0.1>`,
    `Call-ID: ${id}@fuzz`,
    'CSeq: 1 INVITE',
    `Contact: <sip:fuzz@${local.address}:${local.port}${transport === 'TCP' ? ';transport=tcp' : ''}>`,
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(sdp)}`,
    '',
    sdp,
  ].join('\r\n');
}

const BAD_SDP_LINES = [
  'c=IN IP4 127', 'c=IN IP4 300.0.0.1', 'c=IN IP6 ::zz', 'c=IN IP4 ::1', 'c=IN IP4 224.0.0.1/255', 'c=IN IP4', 'c=', 'c=IN IP4 example.com',
  'm=audio 99999 RTP/AVP 0', 'm=audio 65535 RTP/AVP 0', 'm=audio -1 RTP/AVP 0', 'm=audio 0 RTP/AVP 0', 'm=audio 4000/0 RTP/AVP 0', 'm=audio 1e3 RTP/AVP 0',
  'm=audio 4000 RTP/AVP', 'm=', 'a=rtcp:70000', 'a=rtcp:0', 'a=rtcp:4001 IN IP4 127', 'a=rtcp:4001 IN IP6 1.2.3.4', 'a=rtpmap:999 PCMU/8000',
  'a=rtpmap:0 PCMU/0', 'a=rtpmap:0', 'a=rtpmap:', 'v=1', 'x', '=', 'a=sendonly', 'a=inactive', `a=${' '.repeat(5000)}`, `m=audio 4000 RTP/AVP ${'0 '.repeat(3000)}`,
];
const BAD_VIA_PARAMS = [';rport=99999', ';rport=0', ';rport=-1', ';rport=abc', ';received=example.com', ';received=300.1.1.1', ';received=::1;rport=70000', ';maddr=1.2.3.4'];
const WEIRD_HOSTPORTS = ['127.0.0.1:0', '127.0.0.1:99999', '127.0.0.1:65535', '[::1]:5060', '[zz]:1', '0.0.0.0:5060', '255.255.255.255:5060', 'h:', ':5060'];
const STORMS = [' ', '\t', ';', ',', '<', '>', '"', '\\', ':', '=', '/', '\r\n ', '%', '@', '\0'];

/** One mutation of `base`: the operators are what a parser (or a socket behind it) has choked on before. */
function mutate(rng: Rng, base: Buffer): Buffer {
  let text = base.toString('latin1');
  const ops = 1 + rng.int(3);
  for (let k = 0; k < ops; k++) {
    const lines = text.split('\r\n');
    const at = rng.int(Math.max(1, text.length));
    switch (rng.int(12)) {
      case 0: {
        // byte flips
        const b = Buffer.from(text, 'latin1');
        for (let i = 1 + rng.int(8); i > 0 && b.length; i--) b[rng.int(b.length)] = rng.int(256);
        text = b.toString('latin1');
        break;
      }
      case 1: // truncation
        text = text.slice(0, at);
        break;
      case 2: {
        // a header line duplicated many times
        const i = 1 + rng.int(Math.max(1, lines.length - 2));
        lines.splice(i, 0, ...Array.from({ length: 1 + rng.int(300) }, () => lines[i] ?? 'X: y'));
        text = lines.join('\r\n');
        break;
      }
      case 3: {
        // a huge header value
        const i = 1 + rng.int(Math.max(1, lines.length - 2));
        lines.splice(i, 0, `${rng.pick(['Subject', 'Via', 'To', 'Contact', 'X-Long', 'Route', 'Authorization'])}: ${rng.pick(STORMS).repeat(1000 + rng.int(60_000))}`);
        text = lines.join('\r\n');
        break;
      }
      case 4: // a bad Content-Length
        text = text.replace(/(Content-Length|\r\nl)\s*:\s*\d*/i, `$1: ${rng.pick(['-1', '99999999', 'abc', '', '70000', '0', '4294967296', '1 2', '0x10', String(rng.int(2000))])}`);
        break;
      case 5: {
        // a bad SDP line, replacing or added
        const i = lines.findIndex((l) => /^[cma]=/.test(l));
        const line = rng.pick(BAD_SDP_LINES);
        if (i >= 0 && rng.next() < 0.6) lines[i + rng.int(Math.max(1, lines.length - i))] = line;
        else lines.push(line);
        text = lines.join('\r\n');
        break;
      }
      case 6: // Via parameters and host:ports out of range
        text = rng.next() < 0.5 ? text.replace(/(Via:[^\r\n;]*)/i, `$1${rng.pick(BAD_VIA_PARAMS)}`) : text.replace(/\d+\.\d+\.\d+\.\d+:\d+/, rng.pick(WEIRD_HOSTPORTS));
        break;
      case 7: // a long whitespace run
        text = text.slice(0, at) + rng.pick([' ', '\t', ' \t']).repeat(1000 + rng.int(64_000)) + text.slice(at);
        break;
      case 8: // a delimiter storm
        text = text.slice(0, at) + rng.pick(STORMS).repeat(100 + rng.int(20_000)) + text.slice(at);
        break;
      case 9: // random bytes
        text = text.slice(0, at) + crypto.randomBytes(1 + rng.int(64)).toString('latin1') + text.slice(at);
        break;
      case 10: // folding storm
        text = text.replace('\r\n', `\r\n${Array.from({ length: 1 + rng.int(3000) }, () => ' x').join('\r\n')}\r\n`);
        break;
      default: // spliced with itself
        text = text.slice(0, at) + text.slice(rng.int(Math.max(1, text.length)));
    }
  }
  return Buffer.from(text, 'latin1');
}

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  try {
    const who = { tenant: 'default', caller: 'test' };
    resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { tenant: 'default', caller: 'test', id: 'bootstrap:tenant:default' }));
    const p = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
    resultOf(await store.submit(number_added, { number: `+${NUMBER}`, agent: 'default', consent_policy_id: p.policy_id }, who));
  } finally {
    store.close();
  }
}

/** Lines of the gateway's output that mean an exception got away (or nearly: caught only at the outermost handler). */
const escaped = (logs: string[]): string[] =>
  logs.filter((l) => /Uncaught|UnhandledPromiseRejection|unhandled rejection|"level":60|SIP message handling failed|ERR_SOCKET_BAD_PORT|ERR_INVALID_ARG_TYPE/.test(l));

if (insidePrivateNetwork(import.meta.filename, 240_000)) {
  test(`SIP fuzz: ${TOTAL} mutations of RFC 4475 and a valid INVITE over UDP and TCP; the node keeps answering (seed ${SEED})`, { timeout: 200_000 }, async (t) => {
    t.diagnostic(`SWITCHBOARD_FUZZ_SEED=${SEED} replays this run`);
    const rng = prng(SEED);
    const port = await freePort();
    const sipPort = await freePort();
    const dataDir = tmpDir('sb-sip-fuzz-');
    await seed(dataDir);
    const env = { SWITCHBOARD_SIP_PORT: String(sipPort), SWITCHBOARD_SIP_RATE: 'off', SWITCHBOARD_MAX_CALLS: '3', SWITCHBOARD_LOG_LEVEL: 'info' };
    const gw: GatewayProcess = await spawnGateway({ port, dataDir, env });
    t.after(() => gw.stop());

    const udp = dgram.createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    t.after(() => udp.close());
    const answered = new Set<string>();
    udp.on('message', (raw) => {
      const p = parseMessage(raw);
      if (p.ok && p.message.kind === 'response' && p.message.status === 200) answered.add(p.message.headers.get('call-id') ?? '');
    });
    const local = { address: '127.0.0.1', port: udp.address().port };
    let tcp: net.Socket | null = null;
    const tcpSend = async (bytes: Buffer): Promise<void> => {
      if (!tcp || tcp.destroyed) {
        const s = net.connect(sipPort, '127.0.0.1');
        s.on('error', () => undefined);
        s.on('data', () => undefined);
        await new Promise<void>((r) => {
          s.once('connect', () => r());
          s.once('close', () => r());
        });
        tcp = s;
      }
      if (!tcp.destroyed) tcp.write(bytes);
    };
    t.after(() => tcp?.destroy());

    const corpus = fs.readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.dat')).map((f) => fs.readFileSync(path.join(CORPUS_DIR, f)));
    const unique = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').replace(/z9hG4bK/g, `z9hG4bK${rng.int(2 ** 30).toString(36)}`), 'latin1');

    const alive = async (batch: number): Promise<void> => {
      const id = `alive-${batch}-${SEED}`;
      const options = Buffer.from(
        `OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${local.port};branch=z9hG4bK${id}\r\nMax-Forwards: 70\r\n` +
          `From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:gw@127.0.0.1>\r\nCall-ID: ${id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
      );
      const end = Date.now() + 15_000;
      let next = 0;
      while (!answered.has(id)) {
        assert.ok(Date.now() < end, `batch ${batch}: OPTIONS not answered (seed ${SEED})`);
        if (Date.now() >= next) {
          udp.send(options, sipPort, '127.0.0.1');
          next = Date.now() + 1000; // a datagram may be lost behind the batch: resend, like a UAC would
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      const health = await fetch(`${gw.publicUrl}/healthz`, { signal: AbortSignal.timeout(15_000) });
      assert.equal(health.status, 200, `batch ${batch}: /healthz (seed ${SEED})`);
      assert.equal(gw.child.exitCode, null, `batch ${batch}: the gateway exited (seed ${SEED}):\n${gw.logs.slice(-20).join('\n')}`);
      assert.deepEqual(escaped(gw.logs), [], `batch ${batch}: an exception escaped (seed ${SEED})`);
    };

    let sent = 0;
    const perBatch = Math.ceil(TOTAL / BATCHES);
    for (let batch = 0; batch < BATCHES; batch++) {
      for (let i = 0; i < perBatch; i++) {
        const overTcp = rng.next() < 0.3;
        const base = rng.next() < 0.5 ? unique(rng.pick(corpus)) : Buffer.from(validInvite(rng, overTcp ? 'TCP' : 'UDP', local));
        const bytes = mutate(rng, base);
        if (overTcp) await tcpSend(bytes);
        else udp.send(bytes.subarray(0, 65_000), sipPort, '127.0.0.1');
        sent++;
        // Let the gateway's socket buffers drain now and then (datagrams beyond them are dropped by the kernel).
        if (i % 25 === 24) await new Promise((r) => setTimeout(r, 5));
      }
      await alive(batch);
    }
    t.diagnostic(`${sent} mutated messages sent`);
    assert.ok(sent >= TOTAL);
  });
}
