/**
 * PCI pause and PII redaction end to end (issue 17), through a Twilio call on a spawned gateway (its logs captured
 * at trace level), Deepgram faked (test/helpers/fake-deepgram.ts) to script the caller's words:
 *
 *  1. The caller presses #: the deployed agent runs `ctx.secure`: it gathers 16 keyed digits, waits while the caller
 *     says the card number aloud (espeak audio on the line, the words heard by fake-deepgram), hands the digits to a
 *     `sensitive` HTTP tool, then asks the fake LLM about the outcome. The tool received the digits; the card
 *     number (digits, grouped, spoken) is nowhere in the data dir (SQLite, WAL, recordings, keys), the logs, the
 *     LLM's prompts or the transcript; the recording's paused span is silence while the caller spoke in it; the
 *     pause is a row saying who, why and how long; the tool's row holds a digest.
 *  2. A policy redacting cards and e-mail: a spoken card number and an e-mail in the caller's words are stored
 *     redacted, counted in a `transcript_redactions` row, and the agent (and so the LLM) gets the redacted words.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, test } from 'node:test';
import { bundleAgent } from '../../agents/bundle.ts';
import { api } from '../helpers/api.ts';
import { speechUlaw } from '../helpers/audio.ts';
import { startFakeDeepgram } from '../helpers/fake-deepgram.ts';
import { startFakeLlm } from '../helpers/fake-llm.ts';
import { ADMIN_TOKEN, freePort, spawnGateway, TWILIO_TOKEN } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const CARD = '4539148803436467';
const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const SPOKEN = CARD.split('').map((d) => WORDS[Number(d)]).join(' ');
/** The ways the card could show up in bytes: run together, grouped, as JSON digits, spoken. */
const NEEDLES = [CARD, CARD.replace(/(\d{4})(?=\d)/g, '$1 '), CARD.split('').join(' '), CARD.split('').join('","'), SPOKEN, 'eight zero three four'];

const open: Array<{ close(): Promise<unknown> | void }> = [];
after(async () => {
  for (const o of open.reverse()) await o.close();
});

function payerSource(llmUrl: string, toolUrl: string): string {
  return `
import { defineAgent } from 'switchboard/agent';
import { chat } from 'switchboard/llm';
async function ask(content) {
  let text = '';
  for await (const t of chat({ baseUrl: ${JSON.stringify(llmUrl)}, apiKey: 'test-key', model: 'fake', messages: [{ role: 'user', content }] })) text += t;
  return text;
}
export default defineAgent({
  name: 'payer',
  tools: { tokenise: { sensitive: true, http: { url: ${JSON.stringify(toolUrl)} } } },
  async onStart(ctx) { await ctx.say('Payments.'); },
  async onUtterance(ctx, u) {
    ctx.state.set('heard', u.text);
    await ctx.say(await ask('caller said: ' + u.text));
  },
  async onDtmf(ctx, digit) {
    if (digit !== '#') return;
    const token = await ctx.secure(async () => {
      const keyed = await ctx.gather({ dtmf: { maxDigits: 16 }, timeoutMs: 30000 });
      if (keyed.kind !== 'dtmf') return null;
      // The caller reads the number aloud too; # again ends the capture.
      await ctx.gather({ dtmf: { finishOn: '#' }, timeoutMs: 60000 });
      const r = await ctx.tool('tokenise', { card: keyed.digits });
      return r.token;
    });
    ctx.state.set('token', token);
    await ctx.say(await ask('payment token ' + token + ' for this call'));
  },
});`;
}

/** Every file under `dir` (the data dir: SQLite, WAL, recordings, keys), as bytes. */
function filesUnder(dir: string): Array<{ file: string; bytes: Buffer }> {
  const out: Array<{ file: string; bytes: Buffer }> = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    out.push({ file, bytes: fs.readFileSync(file) });
  }
  return out;
}

/** G.711 µ-law byte → linear sample (0xFF and 0x7F are 0). */
function ulawToLinear(u: number): number {
  const v = ~u & 0xff;
  const t = (((v & 0x0f) << 3) + 0x84) << ((v & 0x70) >> 4);
  return v & 0x80 ? 0x84 - t : t - 0x84;
}

/** A WAV's interleaved samples (PCM16 or µ-law, as linear), channels and rate. */
function parseWav(buf: Buffer): { channels: number; rate: number; samples: Int16Array } {
  let off = 12;
  let channels = 1;
  let rate = 8000;
  let format = 1;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') {
      format = buf.readUInt16LE(off + 8);
      channels = buf.readUInt16LE(off + 10);
      rate = buf.readUInt32LE(off + 12);
    }
    if (id === 'data') {
      const data = buf.subarray(off + 8, off + 8 + Math.min(size, buf.length - off - 8));
      if (format === 7) return { channels, rate, samples: Int16Array.from(data, ulawToLinear) };
      return { channels, rate, samples: new Int16Array(data.buffer.slice(data.byteOffset, data.byteOffset + (data.length & ~1))) };
    }
    off += 8 + size + (size & 1);
  }
  throw new Error('no data chunk');
}

async function setup(tag: string) {
  const toolHits: Array<{ key: string | undefined; body: string }> = [];
  const tool = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      toolHits.push({ key: req.headers['idempotency-key'] as string | undefined, body });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `tok_${toolHits.length}` }));
    });
  });
  await new Promise<void>((r) => tool.listen(0, '127.0.0.1', r));
  open.push({ close: () => new Promise((r) => tool.close(r)) });
  const llm = await startFakeLlm({ reply: () => 'Thank you.' });
  open.push({ close: () => llm.close() });
  const dg = await startFakeDeepgram({ apiKey: 'dg-test-key' });
  open.push({ close: () => dg.close() });
  const dataDir = tmpDir(`sb-pci-${tag}-`);
  const gw = await spawnGateway({
    port: await freePort(),
    dataDir,
    logLevel: 'trace',
    env: { SWITCHBOARD_STT: 'deepgram', SWITCHBOARD_TTS: 'espeak', DEEPGRAM_API_KEY: dg.apiKey, DEEPGRAM_URL: dg.url, SWITCHBOARD_AGENT_SILENCE_MS: '600000', OPENAI_API_KEY: 'test-key' },
  });
  open.push({ close: () => gw.stop() });
  if (process.env['PCI_TEST_LOGS']) open.push({ close: () => fs.writeFileSync(`${process.env['PCI_TEST_LOGS']}-${tag}.log`, gw.logs.join('\n')) });
  const base = `http://127.0.0.1:${gw.port}`;
  const work = tmpDir('sb-pci-agent-');
  const file = path.join(work, 'payer.ts');
  fs.writeFileSync(file, payerSource(llm.url, `http://127.0.0.1:${(tool.address() as { port: number }).port}/tokenise`));
  const deployed = await fetch(`${base}/v1/agents/payer/deploy?rollout=100`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/javascript' },
    body: (await bundleAgent(file)).code,
  });
  assert.equal(deployed.status, 201, await deployed.text());
  return { toolHits, llm, dg, gw, base, dataDir };
}

async function dialRecorded(base: string, number: string, policy: string) {
  assert.equal((await api(base, 'POST', '/v1/consent-policies', { body: { name: policy, mode: 'opt-in', disclosure_text: 'We record calls.', timeout_ms: 8000, retries: 0 } })).status, 201);
  assert.equal((await api(base, 'POST', '/v1/numbers', { body: { number, agent: 'payer', consent_policy: policy } })).status, 201);
  const peer = new TwilioPeer({ publicUrl: base, authToken: TWILIO_TOKEN, to: number, from: '+15550007777' });
  open.push({ close: () => peer.close() });
  assert.equal((await peer.dial()).kind, 'streaming');
  let callId = '';
  const detail = async () => (await api<Record<string, unknown> & { call: { state: string }; consents: unknown[]; recordings: Array<Record<string, unknown>>; transcript: Array<{ text: string; channel: string }>; agent_actions: Array<{ kind: string; args: unknown; status: string }> }>(base, 'GET', `/v1/calls/${callId}`)).body;
  for (let i = 0; i < 200 && !callId; i++) {
    const list = await api<{ calls: Array<{ id: string }> }>(base, 'GET', `/v1/calls?to=${encodeURIComponent(number)}`);
    callId = list.body.calls[0]?.id ?? '';
    if (!callId) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(callId, 'the call is listed');
  const poller = setInterval(() => void detail().then((d) => Object.assign(latest, d)).catch(() => undefined), 150);
  open.push({ close: () => clearInterval(poller) });
  const latest = await detail();
  const wait = async (pred: (d: typeof latest) => boolean, what: string, ms = 20_000) => {
    await peer.waitFor(() => pred(latest), ms, what).catch((err: unknown) => {
      throw new Error(`${String(err)}; the call: ${JSON.stringify(latest).slice(0, 3000)}`);
    });
    return latest;
  };
  await wait((d) => (d.consents ?? []).length > 0, 'consent started', 10_000);
  peer.sendDtmf('1');
  await wait((d) => d.recordings.some((r) => r['status'] === 'recording'), 'recording', 15_000);
  await wait((d) => d.agent_actions.some((a) => a.kind === 'say' && a.status === 'succeeded'), 'the agent greeted', 20_000);
  return { peer, callId, wait, latest: () => latest };
}

test('card digits keyed and spoken during ctx.secure reach only the sensitive tool: not the data dir, logs, LLM, transcript or audio', { timeout: 180_000 }, async () => {
  const { toolHits, llm, dg, gw, base, dataDir } = await setup('secure');
  dg.script([]); // the consent question's session: DTMF 1 answers it
  // The call's transcript session hears the card read out, well after the capture begins (# is pressed first).
  dg.script([{ afterMs: 14_000, transcript: SPOKEN }]);
  const { peer, callId, wait } = await dialRecorded(base, '+15550131000', 'pay');

  peer.sendDtmf('#');
  const pauses = async () => (await api<{ pauses: Array<Record<string, unknown>> }>(base, 'GET', `/v1/calls/${callId}/recording/pauses`)).body.pauses;
  let rows = await pauses();
  for (let i = 0; i < 100 && rows.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    rows = await pauses();
  }
  assert.equal(rows.length, 1, 'the pause is a row');
  assert.equal(rows[0]!['by'], 'agent');
  assert.equal(rows[0]!['reason'], 'pci');
  const listen = dg.requests.filter((r) => r.kind === 'listen').at(-1)!;
  const bytesPerMs = (Number(listen.query['sample_rate'] ?? 8000) * 2) / 1000;
  // Precondition, not a timing assertion: the scripted words (≈ 9–14 s into the transcript session) come after
  // the pause began.
  assert.ok(listen.audioBytes / bytesPerMs < 8_500, `the pause began late for the script (${Math.round(listen.audioBytes / bytesPerMs)} ms of audio)`);
  // Keys once the agent listens (its gather row is written just before it does).
  const gathers = (d: { agent_actions: Array<{ kind: string; args: unknown }> }) => d.agent_actions.filter((a) => a.kind === 'note' && JSON.stringify(a.args).includes('"gather"')).length;
  await wait((d) => gathers(d) >= 1, 'the agent gathers the card', 15_000);
  for (const d of CARD) peer.sendDtmf(d);
  // The caller reads the number aloud: real audio on the line while the pause is on (the recording must not have it).
  await peer.play(speechUlaw(SPOKEN.split(' ').slice(0, 8).join(' ')));
  await peer.waitFor(() => listen.audioBytes / bytesPerMs > 15_000, 30_000, 'fake-deepgram heard the spoken card');
  await wait((d) => gathers(d) >= 2, 'the agent waits for # after the spoken number', 15_000);
  peer.sendDtmf('#');
  await peer.waitFor(() => toolHits.length === 1, 15_000, 'the tool ran');
  assert.equal((JSON.parse(toolHits[0]!.body) as { args: { card: string } }).args.card, CARD, 'the tool received the keyed digits');
  await wait((d) => d.agent_actions.filter((a) => a.kind === 'say' && a.status === 'succeeded').length >= 2, 'the agent spoke after the capture', 20_000);
  rows = await pauses();
  assert.ok(rows[0]!['resumed_at'] !== null && typeof rows[0]!['duration_ms'] === 'number', `the pause ended with its length: ${JSON.stringify(rows)}`);

  await peer.hangup();
  const done = await wait((d) => d.call.state === 'ended' && d.recordings.some((r) => r['status'] === 'finalized'), 'recording finalized', 30_000);
  const tool = done.agent_actions.find((a) => a.kind === 'tool')!;
  assert.match(JSON.stringify(tool.args), /"args_hmac":"[0-9a-f]{64}"/, 'the tool row holds a keyed digest');
  assert.ok(!JSON.stringify(tool.args).includes(CARD));
  for (const s of done.transcript) for (const n of NEEDLES) assert.ok(!s.text.toLowerCase().includes(n), `transcript: ${s.text}`);

  // The recording: the paused span is silence on both channels although the caller spoke in it.
  const wav = await fetch(`${base}/v1/calls/${callId}/recording?format=wav`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-switchboard-purpose': 'test' } });
  assert.equal(wav.status, 200);
  const { channels, rate, samples } = parseWav(Buffer.from(await wav.arrayBuffer()));
  const p = rows[0]! as { start_ms: number; end_ms: number };
  const from = Math.floor(((p.start_ms + 60) * rate) / 1000) * channels;
  const to = Math.floor(((p.end_ms - 60) * rate) / 1000) * channels;
  assert.ok(to - from > rate * channels, 'the pause lasted over a second');
  let loud = 0;
  let first = -1;
  let last = -1;
  for (let i = from; i < Math.min(to, samples.length); i++) {
    if (samples[i] === 0) continue;
    loud++;
    if (first < 0) first = i;
    last = i;
  }
  const at = (i: number): string => `${Math.round((i / channels / rate) * 1000)} ms ch${i % channels}`;
  assert.equal(loud, 0, `the paused span [${p.start_ms}, ${p.end_ms}] ms of ${Math.round((samples.length / channels / rate) * 1000)} ms is silence: ${loud} samples are not, ${at(first)} … ${at(last)}`);
  let before = 0;
  for (let i = 0; i < from; i++) if (samples[i] !== 0) before++;
  assert.ok(before > 0, 'the recording has audio outside the pause');

  // Nowhere else: the whole data dir, the logs, the LLM's prompts.
  await gw.stop();
  for (const { file, bytes } of filesUnder(dataDir)) {
    for (const n of NEEDLES) assert.equal(bytes.indexOf(Buffer.from(n)), -1, `${n} found in ${file}`);
  }
  const logs = gw.logs.join('\n');
  assert.ok(logs.length > 1000, 'the gateway logged (trace)');
  for (const n of NEEDLES) assert.ok(!logs.includes(n), `${n} in the logs`);
  const prompts = JSON.stringify(llm.requests.map((r) => r.messages));
  assert.ok(prompts.includes('payment token tok_1'), prompts);
  for (const n of NEEDLES) assert.ok(!prompts.includes(n), `${n} sent to the LLM`);
});

test('a redaction policy: a spoken card number and an e-mail are stored redacted, counted, and the agent gets the redacted words', { timeout: 120_000 }, async () => {
  const { llm, dg, gw, base, dataDir } = await setup('redact');
  assert.equal((await api(base, 'PUT', '/v1/consent-policies/redacting/redaction', { body: { kinds: ['card', 'email'] } })).status, 200);
  dg.script([]);
  dg.script([{ afterMs: 4000, transcript: `My card is ${SPOKEN} and my mail is jane.doe@example.com.` }]);
  const { peer, callId, wait } = await dialRecorded(base, '+15550132000', 'redacting');
  // The agent's turn needs the caller's utterance to end (the VAD): real speech on the line.
  await peer.play(speechUlaw('my card number and my mail'));
  const d = await wait((x) => x.transcript.some((s) => s.channel === 'caller' && s.text.includes('[redacted:')), 'the caller’s words stored', 30_000);
  const seg = d.transcript.find((s) => s.channel === 'caller' && s.text.includes('[redacted:'))!;
  assert.equal(seg.text, 'My card is [redacted:card] and my mail is [redacted:email].');
  let redactions: Array<{ channel: string; counts: Record<string, number> }> = [];
  for (let i = 0; i < 50 && redactions.length === 0; i++) {
    redactions = (await api<{ redactions: typeof redactions }>(base, 'GET', `/v1/calls/${callId}/redactions`)).body.redactions;
    if (redactions.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(redactions.map((r) => [r.channel, r.counts]), [['caller', { card: 1, email: 1 }]], 'the redaction is a row: counts, never values');
  await peer.waitFor(() => llm.requests.length >= 1, 20_000, 'the agent asked the LLM');
  const prompts = JSON.stringify(llm.requests.map((r) => r.messages));
  assert.ok(prompts.includes('[redacted:card]') || prompts.includes('caller said: null'), prompts);
  for (const n of ['jane.doe@example.com', SPOKEN, CARD]) assert.ok(!prompts.includes(n), `${n} sent to the LLM`);
  await peer.hangup();
  await wait((x) => x.call.state === 'ended', 'ended', 15_000);
  await gw.stop();
  for (const { file, bytes } of filesUnder(dataDir)) {
    for (const n of ['jane.doe@example.com', SPOKEN, CARD]) assert.equal(bytes.indexOf(Buffer.from(n)), -1, `${n} found in ${file}`);
  }
});
