/**
 * Fuzz: seeded mutations of valid Twilio Media Streams messages, Vonage media
 * socket messages (JSON text and binary frames), and Twilio / Vonage webhook
 * bodies (form-encoded / JSON, signed correctly so the body parser and the
 * validators are reached), against the real `switchboard start` process.
 * After every batch the node must still answer /healthz (generous bound) and
 * be alive — an exception escaping any handler ends the process — and at the
 * end a real call on each provider still works.
 *
 * The seed is printed; SWITCHBOARD_FUZZ_SEED=N replays a run,
 * SWITCHBOARD_FUZZ_SCALE=F multiplies the number of cases (default 1: ~3,800).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import twilio from 'twilio';
import WebSocket from 'ws';
import { ADMIN_TOKEN, freePort, spawnGateway, TWILIO_TOKEN, VONAGE_SECRET, type GatewayProcess } from '../helpers/gateway.ts';
import { fuzzSeed, Mutator, prng } from '../helpers/json-fuzz.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { sendRequest, vonageJwt, VonagePeer } from '../helpers/vonage-peer.ts';

const TWILIO_NUMBER = '+15554440001';
const VONAGE_NUMBER = '+15554440002';
const SEED = fuzzSeed();
const SCALE = Number(process.env.SWITCHBOARD_FUZZ_SCALE ?? '1') || 1;
const n = (base: number): number => Math.max(1, Math.round(base * SCALE));
const BATCH = 100;
const HEALTH_BOUND_MS = 10_000;

let gw: GatewayProcess;
const open: Array<() => Promise<void> | void> = [];
before(async () => {
  console.log(`# fuzz seed ${SEED} (replay: SWITCHBOARD_FUZZ_SEED=${SEED})`);
  gw = await spawnGateway({ port: await freePort(), dataDir: tmpDir('sb-fuzz-'), env: { SWITCHBOARD_FSYNC_POLICY: 'periodic' } });
  open.push(() => gw.stop());
  for (const [number, provider] of [[TWILIO_NUMBER, 'twilio'], [VONAGE_NUMBER, 'vonage']] as const) {
    const res = await fetch(`${gw.publicUrl}/v1/numbers`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ number, agent: 'default', provider }) });
    assert.equal(res.status, 201, await res.text());
  }
});
after(async () => {
  for (const c of open.reverse()) await c();
});

/** The node is alive, answers /healthz within the bound, logged no escaped exception, and closed no socket for one (1011). */
async function stillServing(what: string): Promise<void> {
  const internal = [...tally].filter(([k]) => k.endsWith(':1011'));
  assert.deepEqual(internal, [], `${what}: a message handler threw (seed ${SEED})`);
  assert.equal(gw.child.exitCode, null, `${what}: the gateway exited (seed ${SEED}):\n${gw.logs.slice(-20).join('\n')}`);
  assert.equal(gw.child.signalCode, null, `${what}: the gateway was killed (seed ${SEED})`);
  const res = await fetch(`${gw.publicUrl}/healthz`, { signal: AbortSignal.timeout(HEALTH_BOUND_MS) });
  assert.equal(res.status, 200, `${what}: /healthz (seed ${SEED})`);
  const escaped = gw.logs.filter((l) => /uncaught|unhandled/i.test(l));
  assert.deepEqual(escaped, [], `${what}: no exception escaped (seed ${SEED})`);
}

/** Runs `count` cases in batches of BATCH (in parallel within a batch), checking the node after each. */
async function inBatches(what: string, count: number, one: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < count; start += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, count - start) }, (_, k) => one(start + k)));
    await stillServing(`${what} #${start}`);
  }
}

const wsBase = (): string => gw.publicUrl.replace('http', 'ws');
const twilioWsHeaders = (): Record<string, string> => ({ 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, `${wsBase()}/twilio/media`, {}) });
const vonageWsHeaders = (): Record<string, string> => ({ Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, null)}` });

/** How the cases came out (HTTP statuses, close codes): printed, and checked so the fuzz is known to reach the parsers. */
const tally = new Map<string, number>();
const count = (what: string): void => void tally.set(what, (tally.get(what) ?? 0) + 1);
const tallied = (prefix: string): Record<string, number> => Object.fromEntries([...tally].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));

/**
 * A media socket fed `frames` in order; resolves with how it ended: the gateway's close code, or 'open' when it
 * was still open after the frames were sent and the gateway had read them (a ping round trip).
 */
function feed(path: string, headers: Record<string, string>, first: Array<string | Buffer>, frames: Array<{ data: string | Buffer; binary: boolean }>): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${wsBase()}${path}`, { headers, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
    let outcome = 'timeout';
    const done = (): void => (clearTimeout(timer), ws.terminate(), resolve(outcome));
    const timer = setTimeout(done, 15_000);
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => ((outcome = `http ${res.statusCode}`), done()));
    ws.on('close', (code) => ((outcome = outcome === 'timeout' ? String(code) : outcome), done()));
    ws.on('open', () => {
      for (const f of first) ws.send(f);
      for (const f of frames) if (ws.readyState === WebSocket.OPEN) ws.send(f.data, { binary: f.binary });
      // A ping round trip: everything before it has been read by the gateway.
      ws.ping();
      ws.once('pong', () => setTimeout(() => ((outcome = ws.readyState === WebSocket.OPEN ? 'open' : outcome), done()), 20));
    });
  });
}

const m = new Mutator(prng(SEED));

/** A frame that makes ws close the socket itself (over 1 MiB, or text that is not UTF-8: 1009 / 1007). */
const fatal = (f: { data: string | Buffer; binary: boolean }): boolean => f.data.length > 1024 * 1024 || (!f.binary && Buffer.isBuffer(f.data));
/** On a live socket the frames ws refuses outright go last, so every other mutant reaches the live leg. */
const fatalLast = <F extends { data: string | Buffer; binary: boolean }>(frames: F[]): F[] => [...frames.filter((f) => !fatal(f)), ...frames.filter(fatal)];
const frame = (data: string | Buffer, binary = false) => ({ data, binary });

// ── Twilio Media Streams ─────────────────────────────────────────────────────

const TWILIO_EVENTS = ['connected', 'start', 'media', 'dtmf', 'mark', 'stop', 'clear'];
function twilioValid(streamSid: string, callSid: string, seq: number): Record<string, unknown>[] {
  return [
    { event: 'connected', protocol: 'Call', version: '1.0.0' },
    { event: 'start', sequenceNumber: String(seq), streamSid, start: { accountSid: `AC${'1'.repeat(32)}`, streamSid, callSid, tracks: ['inbound'], customParameters: { token: 'x' }, mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } } },
    { event: 'media', sequenceNumber: String(seq), streamSid, media: { track: 'inbound', chunk: String(seq), timestamp: String(seq * 20), payload: Buffer.alloc(160, 0xff).toString('base64') } },
    { event: 'dtmf', sequenceNumber: String(seq), streamSid, dtmf: { track: 'inbound_track', digit: '5' } },
    { event: 'mark', sequenceNumber: String(seq), streamSid, mark: { name: 'm1' } },
  ];
}
function twilioMutant(streamSid: string, callSid: string, seq: number): { data: string | Buffer; binary: boolean } {
  const r = m.rnd();
  if (r < 0.1) return frame(m.binary(), true);
  const valid = m.pick(twilioValid(streamSid, callSid, seq));
  const json = m.mutateJson(valid as never, TWILIO_EVENTS);
  return frame(r < 0.75 ? JSON.stringify(json) : m.mutateText(JSON.stringify(valid)));
}

/** A Twilio call answered by the webhook: its CallSid and one-time stream token. */
async function twilioCall(): Promise<{ callSid: string; token: string }> {
  const callSid = `CA${randomUUID().replace(/-/g, '')}`;
  const url = `${gw.publicUrl}/twilio/voice`;
  const params = { AccountSid: `AC${'1'.repeat(32)}`, CallSid: callSid, CallStatus: 'ringing', Direction: 'inbound', From: '+15550001111', To: TWILIO_NUMBER };
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, params) }, body: new URLSearchParams(params) });
  const token = /name="token" value="([^"]+)"/.exec(await res.text())?.[1];
  assert.ok(token, 'the Twilio webhook answers a stream');
  return { callSid, token };
}

test(`Twilio media stream messages: ${n(500)} mutants before start, ${n(800)} on live streams`, { timeout: 120_000 }, async () => {
  // Before start: each socket gets a few mutants, then (sometimes) a start with a forged token.
  await inBatches('twilio media before start', n(500) / 5, async () => {
    const frames = Array.from({ length: 5 }, (_, k) => twilioMutant('MZ1', `CA${'a'.repeat(32)}`, k + 1));
    count(`twilio-pre:${await feed('/twilio/media', twilioWsHeaders(), [], frames)}`);
  });
  // Live streams: a real answered call per socket, mutants after a valid start.
  await inBatches('twilio media on a live stream', n(800) / 50, async () => {
    const { callSid, token } = await twilioCall();
    const streamSid = `MZ${randomUUID().replace(/-/g, '')}`;
    const start = JSON.stringify({ ...twilioValid(streamSid, callSid, 1)[1], start: { ...(twilioValid(streamSid, callSid, 1)[1]!.start as object), customParameters: { token } } });
    const frames = fatalLast(Array.from({ length: 50 }, (_, k) => twilioMutant(streamSid, callSid, k + 2)));
    count(`twilio-live:${await feed('/twilio/media', twilioWsHeaders(), [JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }), start], frames)}`);
  });
  console.log(`# twilio media sockets before start: ${JSON.stringify(tallied('twilio-pre:'))}; live: ${JSON.stringify(tallied('twilio-live:'))}`);
  assert.equal(tallied('twilio-live:')['1008'] ?? 0, 0, 'every live stream passed the token check, so its mutants reached a live leg');
});

// ── Vonage media socket ──────────────────────────────────────────────────────

const VONAGE_EVENTS = ['websocket:connected', 'websocket:dtmf', 'websocket:cleared', 'websocket:notify', 'websocket:error', 'websocket:media:update'];
const vonageValid = (token: string): Record<string, unknown>[] => [
  { event: 'websocket:connected', 'content-type': 'audio/l16;rate=16000', token, caller: '15550001111' },
  { event: 'websocket:dtmf', digit: '7', duration: 250 },
  { event: 'websocket:cleared' },
  { event: 'websocket:notify', payload: { mark: 'm1' } },
  { event: 'websocket:error', reason: 'x' },
];
function vonageMutant(token: string): { data: string | Buffer; binary: boolean } {
  const r = m.rnd();
  if (r < 0.3) return frame(m.binary(), true);
  const valid = m.pick(vonageValid(token));
  return frame(r < 0.8 ? JSON.stringify(m.mutateJson(valid as never, VONAGE_EVENTS)) : m.mutateText(JSON.stringify(valid)));
}

/** A Vonage call answered by the webhook: the one-time token of its NCCO's websocket endpoint. */
async function vonageCall(): Promise<string> {
  const uuid = randomUUID();
  const body = JSON.stringify({ to: VONAGE_NUMBER.slice(1), from: '15550001111', uuid, conversation_uuid: `CON-${uuid}`, endpoint_type: 'phone' });
  const res = await sendRequest(`${gw.publicUrl}/vonage/answer`, 'POST', body, { Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, body)}` });
  assert.ok(!('error' in res) && res.status === 200, 'the Vonage answer webhook answers');
  const token = /"token":"([^"]+)"/.exec(res.body)?.[1];
  assert.ok(token, 'an NCCO with a stream token');
  return token;
}

test(`Vonage media socket messages: ${n(500)} mutants before websocket:connected, ${n(800)} on live sockets`, { timeout: 120_000 }, async () => {
  await inBatches('vonage media before connected', n(500) / 5, async () => {
    count(`vonage-pre:${await feed('/vonage/media', vonageWsHeaders(), [], Array.from({ length: 5 }, () => vonageMutant('forged')))}`);
  });
  await inBatches('vonage media on a live socket', n(800) / 50, async () => {
    const token = await vonageCall();
    const connected = JSON.stringify(vonageValid(token)[0]);
    count(`vonage-live:${await feed('/vonage/media', vonageWsHeaders(), [connected], fatalLast(Array.from({ length: 50 }, () => vonageMutant(token))))}`);
  });
  console.log(`# vonage media sockets before connected: ${JSON.stringify(tallied('vonage-pre:'))}; live: ${JSON.stringify(tallied('vonage-live:'))}`);
  assert.equal(tallied('vonage-live:')['1008'] ?? 0, 0, 'every live socket passed the token check, so its mutants reached a live leg');
});

// ── Webhook bodies ───────────────────────────────────────────────────────────

/** A form body from a mutated parameter set: every value a string (form-encoding), keys and values mutated. */
function formMutant(valid: Record<string, string>): Record<string, string> {
  const json = m.mutateJson(valid as never) as unknown;
  const out: Record<string, string> = {};
  if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
    for (const [k, v] of Object.entries(json)) Object.defineProperty(out, k, { value: typeof v === 'string' ? v : JSON.stringify(v) ?? '', enumerable: true, writable: true, configurable: true });
  }
  return out;
}

test(`Twilio webhook bodies: ${n(600)} signed mutants of /twilio/voice and /twilio/status`, { timeout: 120_000 }, async () => {
  await inBatches('twilio webhooks', n(600), async () => {
    const path = m.rnd() < 0.6 ? '/twilio/voice' : '/twilio/status';
    const url = `${gw.publicUrl}${path}`;
    const valid = { AccountSid: `AC${'1'.repeat(32)}`, CallSid: `CA${randomUUID().replace(/-/g, '')}`, CallStatus: m.pick(['ringing', 'in-progress', 'completed']), From: '+15550001111', To: TWILIO_NUMBER, Direction: 'inbound' };
    const params = formMutant(valid);
    const form = new URLSearchParams(Object.entries(params)).toString();
    const damaged = m.rnd() < 0.15 ? m.mutateText(form) : form; // damaged bytes fail the signature (403): the refusal path too
    const body = typeof damaged === 'string' ? damaged : (new Uint8Array(damaged).buffer as ArrayBuffer);
    const contentType = m.rnd() < 0.9 ? 'application/x-www-form-urlencoded' : m.pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded; charset=utf-16', '']);
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType, 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, url, params) }, body, signal: AbortSignal.timeout(30_000) });
    await res.arrayBuffer();
    count(`twilio-hook:${res.status}`);
    assert.ok(res.status < 500, `${path} answered ${res.status} (seed ${SEED}) for ${String(damaged).slice(0, 300)}`);
  });
  const statuses = tallied('twilio-hook:');
  console.log(`# twilio webhook statuses: ${JSON.stringify(statuses)}`);
  assert.ok((statuses['403'] ?? 0) < n(600) / 2, 'most mutants passed the signature and reached the body parser and validators');
});

test(`Vonage webhook bodies: ${n(600)} signed mutants of /vonage/answer and /vonage/event`, { timeout: 120_000 }, async () => {
  await inBatches('vonage webhooks', n(600), async () => {
    const uuid = randomUUID();
    const answer = m.rnd() < 0.5;
    const valid = answer
      ? { to: VONAGE_NUMBER.slice(1), from: '15550001111', uuid, conversation_uuid: `CON-${uuid}`, endpoint_type: 'phone' }
      : { uuid, conversation_uuid: `CON-${uuid}`, status: m.pick(['started', 'answered', 'completed', 'disconnected']), direction: 'inbound', timestamp: new Date().toISOString() };
    const mutant = m.rnd() < 0.8 ? JSON.stringify(m.mutateJson(valid as never)) : m.mutateText(JSON.stringify(valid));
    const body = typeof mutant === 'string' ? mutant : mutant.toString('latin1');
    const res = await sendRequest(`${gw.publicUrl}/vonage/${answer ? 'answer' : 'event'}`, 'POST', body, { Authorization: `Bearer ${vonageJwt(VONAGE_SECRET, body)}` });
    assert.ok(!('error' in res), `vonage webhook: ${'error' in res ? res.error : ''} (seed ${SEED})`);
    count(`vonage-hook:${res.status}`);
    assert.ok(res.status < 500 || res.status === 503, `vonage webhook answered ${res.status} (seed ${SEED}) for ${body.slice(0, 300)}`);
  });
  const statuses = tallied('vonage-hook:');
  console.log(`# vonage webhook statuses: ${JSON.stringify(statuses)}`);
  assert.ok((statuses['403'] ?? 0) < n(600) / 2, 'most mutants passed the JWT check and reached the body parser and validators');
});

test('after the fuzz a real Twilio call and a real Vonage call still work', { timeout: 60_000 }, async () => {
  await stillServing('before the real calls');
  const tp = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: TWILIO_NUMBER, redirectRetryMs: 5000 });
  open.push(() => tp.close());
  assert.equal((await tp.dial()).kind, 'streaming');
  await tp.waitFor(() => tp.receivedAudio().length > 8000, 20_000, 'the Twilio caller hears the agent');
  const vp = new VonagePeer({ publicUrl: gw.publicUrl, secret: VONAGE_SECRET, to: VONAGE_NUMBER, retryMs: 5000 });
  open.push(() => vp.close());
  assert.equal((await vp.dial()).kind, 'streaming');
  await vp.waitFor(() => vp.receivedBytes > 32_000, 20_000, 'the Vonage caller hears the agent');
  await tp.hangup();
  await vp.hangup();
  await stillServing('after the real calls');
});
