/**
 * RFC 4475 torture messages, byte-exact, through a real UDP socket to the
 * running SIP stack (mountSip on port 0 over a store with no numbers): each
 * gets what `expectations.json` says a UAS should do (a status, or silence),
 * and after each one the server still answers a valid OPTIONS with 200.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { CallControl } from '../../../bridge/call-control.ts';
import { CallManager } from '../../../bridge/call-manager.ts';
import type { SessionDeps } from '../../../bridge/call-session.ts';
import { mountSip, type SipIngress } from '../../../ingress/sip/index.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { openTestStore } from '../../helpers/store.ts';
import { options, SipProbe } from '../../helpers/sip.ts';

const DIR = path.join(import.meta.dirname, '..', '..', 'fixtures', 'sip', 'rfc4475');
type Expect = 'any-non-400' | 'discard' | Array<number | 'discard' | 'any-non-400'>;
const expectations = JSON.parse(fs.readFileSync(path.join(DIR, 'expectations.json'), 'utf8')) as Record<string, { section: string; respond: Expect; note?: string }>;

let sip: SipIngress;
let probe: SipProbe;
const store = openTestStore();
before(async () => {
  const logger = pino({ level: 'silent' });
  // No number is routed: every INVITE is refused before a call (or a session) could exist.
  const sessions = new CallManager({ store, logger } as unknown as SessionDeps);
  sip = await mountSip({ store, logger, dataDir: tmpDir('sb-sip-torture-'), calls: new CallControl({ store, sessions, logger }) }, { host: '0.0.0.0', port: 0, rtpPorts: { low: 40000, high: 40999 } });
  // Torture Vias name port 5060 (or none = 5060) and 5050; mpart01 uses rport (source port).
  probe = await SipProbe.open([5060, 5050]);
});
after(async () => {
  probe.close();
  await sip.close();
  store.close();
});

const callIdOf = (bytes: Buffer): string | undefined => /^(?:call-id|i)[ \t]*:[ \t]*(\S+)/im.exec(bytes.toString('latin1'))?.[1];

function verdict(expect: Expect, finals: number[], any: number): string | null {
  const allowed = Array.isArray(expect) ? expect : [expect];
  const final = finals[0];
  if (final === undefined && any === 0) return allowed.includes('discard') ? null : 'no response';
  if (final === undefined) return 'only provisional responses';
  if (allowed.includes(final)) return null;
  if (allowed.includes('any-non-400') && final !== 400 && finals.every((s) => s !== 400)) return null;
  return `got ${finals.join(',')}`;
}

test('all 49 RFC 4475 messages (+ test.dat) get what a UAS should do, and the server keeps serving', { timeout: 240_000 }, async () => {
  const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.dat')).sort();
  assert.equal(files.length, 50);
  const seen = new Set<string>();
  const failures: string[] = [];
  let n = 0;
  for (const file of files) {
    const name = file.replace(/\.dat$/, '');
    const exp = expectations[name];
    assert.ok(exp, `expectation for ${name}`);
    const bytes = fs.readFileSync(path.join(DIR, file));
    const callId = callIdOf(bytes);
    const earlier = new Set(seen);
    const mine = (c: string | undefined): boolean => (callId === undefined ? c === undefined || !earlier.has(c) : c === callId);
    const since = Date.now();
    probe.send(bytes, { port: sip.port }, 5060);
    const discardOk = Array.isArray(exp.respond) ? exp.respond.includes('discard') : exp.respond === 'discard';
    await probe.waitFor(() => probe.responses(since, mine).some((r) => r.status >= 200), discardOk ? 800 : 4000);
    const got = probe.responses(since, mine);
    const finals = got.filter((r) => r.status >= 200).map((r) => r.status);
    const why = verdict(exp.respond, finals, got.length);
    if (why) failures.push(`${name} (§${exp.section}, expected ${JSON.stringify(exp.respond)}): ${why}`);
    if (callId) seen.add(callId);
    // The server is still there.
    const probeId = `alive-${n++}-${Date.now()}`;
    const t0 = Date.now();
    probe.send(options(probe, 5060, probeId), { port: sip.port }, 5060);
    const ok = await probe.waitFor(() => probe.responses(t0, (c) => c === probeId).find((r) => r.status === 200), 3000);
    if (!ok) failures.push(`${name}: no 200 to OPTIONS afterwards`);
    seen.add(probeId);
  }
  assert.deepEqual(failures, []);
});

test('refusals carry what the RFC asks for: 501/405 with Allow, 420 with Unsupported, 415 with Accept, and stray Vias get received=', async () => {
  const check = async (file: string, status: number, header: string, pattern: RegExp): Promise<void> => {
    const bytes = fs.readFileSync(path.join(DIR, file));
    const callId = callIdOf(bytes);
    const since = Date.now();
    probe.send(bytes, { port: sip.port }, 5060);
    const res = await probe.waitFor(() => probe.responses(since, (c) => c === callId).find((r) => r.status >= 200), 4000);
    assert.ok(res, `${file}: a response`);
    assert.equal(res.status, status, file);
    assert.match(res.headers.get(header) ?? '', pattern, `${file}: ${header}`);
    assert.match(res.headers.get('via') ?? '', new RegExp(`received=${probe.address.replace(/\./g, '\\.')}`), `${file}: Via received`);
  };
  await check('intmeth.dat', 501, 'allow', /INVITE.*OPTIONS/);
  await check('bext01.dat', 420, 'unsupported', /nothingSupportsThis/);
  await check('invut.dat', 415, 'accept', /application\/sdp/);
  await check('regaut01.dat', 405, 'allow', /INVITE/);
});
