/**
 * A lean Twilio load generator (child process of bench/twilio.bench.ts): plays
 * Twilio's part of many inbound calls at once, on one event loop.
 *
 * Per call: POST /twilio/voice (form-encoded, X-Twilio-Signature from
 * twilio.getExpectedTwilioSignature over URL + params) → Stream URL and token
 * from the TwiML (regex) → WS upgrade signed over the stream URL → `connected`,
 * `start` (customParameters.token, audio/x-mulaw 8000 1) → one 160-byte µ-law
 * silence `media` message every 20 ms (sequenceNumber / chunk / timestamp as
 * Twilio fills them). Every `mark` is echoed at once (the frames before it have
 * already arrived in real time; Twilio echoes when played out). On the first
 * outbound frame (the consent prompt) the caller presses CONSENT_DIGIT
 * (decline: the call goes on unrecorded). After the first play that ends with
 * an end mark (the greeting; a prompt cut short by the answer ends with a
 * `clear` instead), each call presses DTMF_DIGIT every dtmfMs (phase spread by
 * call index), so the agent keeps answering: that is the outbound load.
 *
 * Inbound frames leave from one drift-correcting clock with 10 phase buckets
 * 2 ms apart (call i's frames are due at epoch + 2·bucket + 20·k), so the server
 * sees a steady stream rather than one burst per 20 ms; a late tick catches up.
 *
 * Outbound (server → client) frames are timed on arrival. A play runs from its
 * first frame to its end mark `e:…`; frame k of a play is due at anchor + 20k,
 * where the anchor is the first frame's arrival, moved earlier whenever a later
 * frame shows the play's grid to be earlier (so a late first frame does not
 * hide later lateness). Late = more than 40 ms behind that schedule.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import twilio from 'twilio';
import WebSocket from 'ws';
import { CONSENT_DIGIT, DTMF_DIGIT, FRAME_MS, Hist, LATE_MS, send, SILENCE_B64, type ClientStats, type WorkerCommand } from './shared.ts';

const BUCKETS = 10;
const BUCKET_MS = FRAME_MS / BUCKETS;

interface Call {
  idx: number;
  callSid: string;
  streamSid: string;
  ws: WebSocket | null;
  streaming: boolean;
  closedByUs: boolean;
  seq: number;
  chunk: number;
  startedAt: number;
  // outbound play tracking
  inPlay: boolean;
  anchor: number;
  k: number;
  last: number;
  greetingDone: boolean;
  consentAnswered: boolean;
  nextDtmfAt: number;
  dtmfAt: number;
  tail: string;
}

let cfg: Extract<WorkerCommand, { type: 'start' }> | null = null;
const calls: Call[] = [];
const buckets: Call[][] = Array.from({ length: BUCKETS }, () => []);
let failed = 0;
let busy = 0;
const failures: Record<string, number> = {};
let droppedByServer = 0;
let streamingCount = 0;

// window counters
let framesSent = 0;
let framesReceived = 0;
let marksReceived = 0;
let clears = 0;
let unexpected = 0;
let plays = 0;
let lateFrames = 0;
let maxLateness = 0;
let dtmfSent = 0;
const lateness = new Hist();
const jitter = new Hist();
const turn = new Hist();
const webhook = new Hist();
const upgrade = new Hist();
const playFrames: Record<string, number> = {};
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function fail(reason: string): void {
  failed++;
  failures[reason] = (failures[reason] ?? 0) + 1;
}

function post(url: string, params: Record<string, string>): Promise<{ status: number; body: string }> {
  const signature = twilio.getExpectedTwilioSignature(cfg?.authToken ?? '', url, params);
  const body = new URLSearchParams(params).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
          'x-twilio-signature': signature,
          'user-agent': 'TwilioProxy/1.1',
        },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const unxml = (s: string): string => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

async function place(c: Call): Promise<void> {
  const conf = cfg as NonNullable<typeof cfg>;
  const url = `${conf.baseUrl}/twilio/voice`;
  const params = {
    AccountSid: `AC${'0'.repeat(32)}`,
    ApiVersion: '2010-04-01',
    CallSid: c.callSid,
    CallStatus: 'ringing',
    Called: conf.to,
    Caller: `+1555${String(1000000 + c.idx).slice(-7)}`,
    Direction: 'inbound',
    From: `+1555${String(1000000 + c.idx).slice(-7)}`,
    To: conf.to,
  };
  const t0 = performance.now();
  let res: { status: number; body: string };
  try {
    res = await post(url, params);
  } catch (err) {
    return fail(`webhook: ${(err as Error).message}`);
  }
  webhook.add(performance.now() - t0);
  if (res.status !== 200) return fail(`webhook HTTP ${res.status}`);
  // Admission control: the gateway is at its limit and says so; not a failure of the gateway.
  if (/<Reject[^>]*\sreason="busy"/.test(res.body)) {
    busy++;
    return;
  }
  const streamUrl = /<Stream[^>]*\surl="([^"]+)"/.exec(res.body)?.[1];
  const token = /<Parameter[^>]*\sname="token"[^>]*\svalue="([^"]*)"/.exec(res.body)?.[1];
  if (!streamUrl || token === undefined) return fail('twiml: no <Stream>');
  const wsUrl = unxml(streamUrl);
  const t1 = performance.now();
  const ws = new WebSocket(wsUrl, {
    headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(conf.authToken, wsUrl, {}) },
    perMessageDeflate: false,
    handshakeTimeout: 30_000,
  });
  c.ws = ws;
  await new Promise<void>((resolve) => {
    let opened = false;
    ws.on('open', () => {
      opened = true;
      upgrade.add(performance.now() - t1);
      startStream(c, ws, unxml(token));
      resolve();
    });
    ws.on('unexpected-response', (_req, r) => {
      fail(`upgrade HTTP ${r.statusCode ?? 0}`);
      ws.terminate();
      resolve();
    });
    ws.on('error', (err) => {
      if (!opened) {
        fail(`upgrade: ${err.message}`);
        resolve();
      }
    });
    ws.on('close', (code) => {
      if (!opened) return resolve();
      if (c.streaming) {
        c.streaming = false;
        streamingCount--;
        if (!c.closedByUs) {
          droppedByServer++;
          failures[`closed by server (${code})`] = (failures[`closed by server (${code})`] ?? 0) + 1;
        }
      }
    });
  });
}

function startStream(c: Call, ws: WebSocket, token: string): void {
  c.streamSid = `MZ${randomBytes(16).toString('hex')}`;
  c.tail = `","payload":"${SILENCE_B64}"},"streamSid":"${c.streamSid}"}`;
  ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
  c.seq = 1;
  ws.send(
    JSON.stringify({
      event: 'start',
      sequenceNumber: '1',
      start: {
        accountSid: `AC${'0'.repeat(32)}`,
        streamSid: c.streamSid,
        callSid: c.callSid,
        tracks: ['inbound'],
        customParameters: { token },
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
      },
      streamSid: c.streamSid,
    }),
  );
  c.startedAt = performance.now();
  c.streaming = true;
  streamingCount++;
  ws.on('message', (data: Buffer, isBinary: boolean) => onMessage(c, data, isBinary));
  // Smallest bucket first, so phases stay evenly spread.
  let b = 0;
  for (let i = 1; i < BUCKETS; i++) if ((buckets[i] as Call[]).length < (buckets[b] as Call[]).length) b = i;
  (buckets[b] as Call[]).push(c);
}

const MEDIA_HEAD = '{"event":"media"';

function onMessage(c: Call, data: Buffer, isBinary: boolean): void {
  const now = performance.now();
  if (isBinary) return void unexpected++;
  if (data.length > 16 && data.toString('latin1', 0, 16) === MEDIA_HEAD) {
    framesReceived++;
    if (!c.consentAnswered) {
      // The first audio of a call is the consent prompt: decline it (see CONSENT_DIGIT).
      c.consentAnswered = true;
      c.ws?.send(`{"event":"dtmf","streamSid":"${c.streamSid}","sequenceNumber":"${++c.seq}","dtmf":{"track":"inbound_track","digit":"${CONSENT_DIGIT}"}}`);
    }
    if (!c.inPlay) {
      c.inPlay = true;
      c.anchor = now;
      c.k = 0;
      c.last = now;
      plays++;
      if (c.dtmfAt > 0) {
        turn.add(now - c.dtmfAt);
        c.dtmfAt = 0;
      }
      return;
    }
    c.k++;
    jitter.add(Math.abs(now - c.last - FRAME_MS));
    c.last = now;
    let late = now - (c.anchor + c.k * FRAME_MS);
    if (late < 0) {
      c.anchor = now - c.k * FRAME_MS; // the grid is earlier than the first frame showed
      late = 0;
    }
    lateness.add(late);
    if (late > LATE_MS) lateFrames++;
    if (late > maxLateness) maxLateness = late;
    return;
  }
  let msg: { event?: string; mark?: { name?: string } };
  try {
    msg = JSON.parse(data.toString()) as typeof msg;
  } catch {
    return void unexpected++;
  }
  if (msg.event === 'mark') {
    const name = msg.mark?.name ?? '';
    marksReceived++;
    c.ws?.send(`{"event":"mark","sequenceNumber":"${++c.seq}","streamSid":"${c.streamSid}","mark":{"name":${JSON.stringify(name)}}}`);
    if (name.startsWith('e:') && c.inPlay) {
      c.inPlay = false;
      const key = String(c.k + 1);
      playFrames[key] = (playFrames[key] ?? 0) + 1;
      if (!c.greetingDone) {
        c.greetingDone = true;
        const dtmfMs = cfg?.dtmfMs ?? 0;
        // Spread the first press over one interval by call index (deterministic).
        if (dtmfMs > 0) c.nextDtmfAt = now + 500 + ((c.idx * 7919) % 1000) / 1000 * dtmfMs;
      }
    }
  } else if (msg.event === 'clear') {
    clears++;
    c.inPlay = false;
  } else unexpected++;
}

// ───────────── inbound clock ─────────────
const epoch = performance.now();
let nextSlot = 0;
let clockTimer: NodeJS.Timeout | null = null;
function tick(): void {
  clockTimer = null;
  const now = performance.now();
  const due = Math.floor((now - epoch) / BUCKET_MS) + 1;
  const dtmfMs = cfg?.dtmfMs ?? 0;
  while (nextSlot < due) {
    const list = buckets[nextSlot % BUCKETS] as Call[];
    nextSlot++;
    for (let i = 0; i < list.length; i++) {
      const c = list[i] as Call;
      const ws = c.ws;
      if (!c.streaming || !ws || ws.readyState !== WebSocket.OPEN) continue;
      const chunk = ++c.chunk;
      ws.send(`{"event":"media","sequenceNumber":"${++c.seq}","media":{"track":"inbound","chunk":"${chunk}","timestamp":"${(chunk - 1) * FRAME_MS}${c.tail}`);
      framesSent++;
      if (dtmfMs > 0 && c.nextDtmfAt > 0 && now >= c.nextDtmfAt) {
        c.nextDtmfAt += dtmfMs;
        ws.send(`{"event":"dtmf","streamSid":"${c.streamSid}","sequenceNumber":"${++c.seq}","dtmf":{"track":"inbound_track","digit":"${DTMF_DIGIT}"}}`);
        dtmfSent++;
        // Measure the turn only when nothing is playing (else the reply queues behind the play).
        c.dtmfAt = c.inPlay ? 0 : now;
      }
    }
  }
  clockTimer = setTimeout(tick, Math.max(0, epoch + nextSlot * BUCKET_MS - performance.now()));
}

function stats(): ClientStats {
  return {
    streaming: streamingCount,
    failed,
    busy,
    failures,
    droppedByServer,
    framesSent,
    framesReceived,
    marksReceived,
    clears,
    unexpected,
    plays,
    lateFrames,
    maxLatenessMs: maxLateness,
    dtmfSent,
    lateness: lateness.toJSON(),
    jitter: jitter.toJSON(),
    turn: turn.toJSON(),
    webhook: webhook.toJSON(),
    upgrade: upgrade.toJSON(),
    loopDelay: { p50: Math.max(0, eld.percentile(50) / 1e6 - 10), p99: Math.max(0, eld.percentile(99) / 1e6 - 10), max: Math.max(0, eld.max / 1e6 - 10) },
    playFrames,
  };
}

function reset(): void {
  framesSent = 0;
  framesReceived = 0;
  marksReceived = 0;
  clears = 0;
  unexpected = 0;
  plays = 0;
  lateFrames = 0;
  maxLateness = 0;
  dtmfSent = 0;
  lateness.reset();
  jitter.reset();
  turn.reset();
  eld.reset();
}

async function start(conf: Extract<WorkerCommand, { type: 'start' }>): Promise<void> {
  cfg = conf;
  tick();
  const progress = setInterval(() => send({ type: 'progress', streaming: streamingCount, failed }), 2000);
  const t0 = performance.now();
  const pending: Array<Promise<void>> = [];
  for (let j = 0; j < conf.calls.length; j++) {
    const idx = conf.calls[j] as number;
    const wait = t0 + conf.startDelayMs + j * conf.intervalMs - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const hex = `${conf.runId}${idx.toString(16).padStart(8, '0')}`.padStart(32, '0').slice(-32);
    const c: Call = {
      idx, callSid: `CA${hex}`, streamSid: '', ws: null, streaming: false, closedByUs: false, seq: 0, chunk: 0, startedAt: 0,
      inPlay: false, anchor: 0, k: 0, last: 0, greetingDone: false, consentAnswered: false, nextDtmfAt: 0, dtmfAt: 0, tail: '',
    };
    calls.push(c);
    pending.push(place(c).catch((err: unknown) => fail(`setup: ${(err as Error).message}`)));
  }
  await Promise.all(pending);
  clearInterval(progress);
  send({ type: 'ready', streaming: streamingCount, failed });
}

async function stop(): Promise<void> {
  if (clockTimer) clearTimeout(clockTimer);
  const closing: Array<Promise<void>> = [];
  for (const c of calls) {
    const ws = c.ws;
    if (!ws) continue;
    c.closedByUs = true;
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(`{"event":"stop","sequenceNumber":"${++c.seq}","streamSid":"${c.streamSid}","stop":{"accountSid":"AC${'0'.repeat(32)}","callSid":"${c.callSid}"}}`);
      closing.push(new Promise((r) => ws.once('close', () => r())));
      ws.close(1000);
    } else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
  }
  await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 5000))]);
  for (const c of calls) c.ws?.terminate();
  agent.destroy();
  send({ type: 'stopped' });
  setTimeout(() => process.exit(0), 50);
}

process.on('message', (raw) => {
  const cmd = raw as WorkerCommand;
  if (cmd.type === 'start') void start(cmd);
  else if (cmd.type === 'reset') {
    reset();
    send({ type: 'stats', stats: stats() });
  } else if (cmd.type === 'snapshot') send({ type: 'stats', stats: stats() });
  else if (cmd.type === 'stop') void stop();
});
process.once('disconnect', () => process.exit(0));
