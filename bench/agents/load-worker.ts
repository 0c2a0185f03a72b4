/**
 * Twilio's part of many live calls to the concierge agent (child process of
 * bench/agents.bench.ts), one event loop. Per call: signed POST /twilio/voice
 * → Stream URL and token from the TwiML (webhook.ts) → signed WS upgrade → `connected`,
 * `start` → a 160-byte µ-law silence `media` frame every 20 ms (10 phase
 * buckets 2 ms apart, drift-correcting). Every `mark` is echoed at once. The
 * first outbound frame is the consent prompt: the caller declines
 * (CONSENT_DIGIT; the policy goes on unrecorded).
 *
 * After 'press', call i presses PRESS_DIGIT at startAt + (i/total)·period and
 * every period after — only when it has heard no play for IDLE_MS (so the
 * previous turn is over and the press starts a turn at once); otherwise that
 * round is skipped. Each press is logged with the abs time it was handed to
 * ws.send.
 *
 * Frame gaps: outbound frames are timed on arrival. A play runs from the
 * first `media` after the previous play's end mark (`e:<id>`, which the
 * gateway sends right after a play's last frame) or `clear`, to its own end
 * mark; the gap between two consecutive frames of one play is recorded with
 * the later frame's arrival time. The silence between utterances is
 * therefore never a gap.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { closeAgent, ring, upgradeHeaders } from './webhook.ts';
import { abs, CONSENT_DIGIT, IDLE_MS, LoopSlices, PRESS_DIGIT, send, type LoadCommand, type LoadSnapshot, type Window } from './shared.ts';

const FRAME_MS = 20;
const BUCKETS = 10;
const BUCKET_MS = FRAME_MS / BUCKETS;
const SILENCE_B64 = Buffer.alloc(160, 0xff).toString('base64');
const MEDIA_HEAD = '{"event":"media"';

interface Call {
  idx: number;
  callSid: string;
  streamSid: string;
  ws: WebSocket | null;
  streaming: boolean;
  closedByUs: boolean;
  seq: number;
  chunk: number;
  tail: string;
  consentAnswered: boolean;
  inPlay: boolean;
  last: number;
  /** performance.now() of the last play end (end mark or clear). */
  idleSince: number;
  /** abs time of the next press; 0 = not pressing. */
  nextPressAt: number;
}

let cfg: Extract<LoadCommand, { type: 'start' }> | null = null;
let pressPeriod = 0;
const calls: Call[] = [];
const buckets: Call[][] = Array.from({ length: BUCKETS }, () => []);
const failures: Record<string, number> = {};
let failed = 0;
let droppedByServer = 0;
let streamingCount = 0;
let plays = 0;
let clears = 0;
let skippedPresses = 0;
const presses: Array<[number, number]> = [];
/** Pairs (abs arrival, gap ms) of every within-play gap since the start. */
let gapBuf = new Float64Array(1 << 16);
let gapN = 0;
const bigGaps: Array<[number, number, number]> = [];
const loop = new LoopSlices(100);

function fail(reason: string): void {
  failed++;
  failures[reason] = (failures[reason] ?? 0) + 1;
}

function recordGap(at: number, gap: number, idx: number): void {
  if (gapN + 2 > gapBuf.length) {
    const next = new Float64Array(gapBuf.length * 2);
    next.set(gapBuf);
    gapBuf = next;
  }
  gapBuf[gapN++] = at;
  gapBuf[gapN++] = gap;
  if (gap > 30) bigGaps.push([at, gap, idx]);
}

async function place(c: Call): Promise<void> {
  const conf = cfg as NonNullable<typeof cfg>;
  const from = `+1555${String(1000000 + c.idx).slice(-7)}`;
  const rung = await ring({ baseUrl: conf.baseUrl, authToken: conf.authToken, to: conf.to, callSid: c.callSid, from });
  if ('error' in rung) return fail(rung.error);
  const ws = new WebSocket(rung.wsUrl, { headers: upgradeHeaders(rung.wsUrl, conf.authToken), perMessageDeflate: false, handshakeTimeout: 30_000 });
  c.ws = ws;
  await new Promise<void>((resolve) => {
    let opened = false;
    ws.on('open', () => {
      opened = true;
      startStream(c, ws, rung.token);
      resolve();
    });
    ws.on('unexpected-response', (_req, r) => {
      fail(`upgrade HTTP ${r.statusCode ?? 0}`);
      ws.terminate();
      resolve();
    });
    ws.on('error', (err) => {
      if (opened) return;
      fail(`upgrade: ${err.message}`);
      resolve();
    });
    ws.on('close', (code) => {
      if (!opened) return resolve();
      if (!c.streaming) return;
      c.streaming = false;
      streamingCount--;
      if (!c.closedByUs) {
        droppedByServer++;
        failures[`closed by server (${code})`] = (failures[`closed by server (${code})`] ?? 0) + 1;
      }
    });
  });
}

function startStream(c: Call, ws: WebSocket, token: string): void {
  c.streamSid = `MZ${randomBytes(16).toString('hex')}`;
  c.tail = `","payload":"${SILENCE_B64}"},"streamSid":"${c.streamSid}"}`;
  ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
  c.seq = 1;
  const start = {
    accountSid: `AC${'0'.repeat(32)}`,
    streamSid: c.streamSid,
    callSid: c.callSid,
    tracks: ['inbound'],
    customParameters: { token },
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
  };
  ws.send(JSON.stringify({ event: 'start', sequenceNumber: '1', start, streamSid: c.streamSid }));
  c.streaming = true;
  c.idleSince = performance.now();
  streamingCount++;
  ws.on('message', (data: Buffer, isBinary: boolean) => onMessage(c, data, isBinary));
  let b = 0;
  for (let i = 1; i < BUCKETS; i++) if ((buckets[i] as Call[]).length < (buckets[b] as Call[]).length) b = i;
  (buckets[b] as Call[]).push(c);
}

function dtmf(c: Call, digit: string): void {
  c.ws?.send(`{"event":"dtmf","streamSid":"${c.streamSid}","sequenceNumber":"${++c.seq}","dtmf":{"track":"inbound_track","digit":"${digit}"}}`);
}

function onMessage(c: Call, data: Buffer, isBinary: boolean): void {
  if (isBinary) return;
  const now = performance.now();
  if (data.length > 16 && data.toString('latin1', 0, 16) === MEDIA_HEAD) {
    if (!c.consentAnswered) {
      c.consentAnswered = true;
      dtmf(c, CONSENT_DIGIT);
    }
    if (c.inPlay) recordGap(performance.timeOrigin + now, now - c.last, c.idx);
    else {
      c.inPlay = true;
      plays++;
    }
    c.last = now;
    return;
  }
  let msg: { event?: string; mark?: { name?: string } };
  try {
    msg = JSON.parse(data.toString()) as typeof msg;
  } catch {
    return;
  }
  if (msg.event === 'mark') {
    const name = msg.mark?.name ?? '';
    c.ws?.send(`{"event":"mark","sequenceNumber":"${++c.seq}","streamSid":"${c.streamSid}","mark":{"name":${JSON.stringify(name)}}}`);
    if (name.startsWith('e:')) {
      c.inPlay = false;
      c.idleSince = now;
    }
  } else if (msg.event === 'clear') {
    clears++;
    c.inPlay = false;
    c.idleSince = now;
  }
}

// ───────────── inbound clock (and presses) ─────────────
const epoch = performance.now();
let nextSlot = 0;
let clockTimer: NodeJS.Timeout | null = null;
function tick(): void {
  clockTimer = null;
  const now = performance.now();
  const nowAbs = performance.timeOrigin + now;
  const due = Math.floor((now - epoch) / BUCKET_MS) + 1;
  while (nextSlot < due) {
    const list = buckets[nextSlot % BUCKETS] as Call[];
    nextSlot++;
    for (let i = 0; i < list.length; i++) {
      const c = list[i] as Call;
      const ws = c.ws;
      if (!c.streaming || !ws || ws.readyState !== WebSocket.OPEN) continue;
      const chunk = ++c.chunk;
      ws.send(`{"event":"media","sequenceNumber":"${++c.seq}","media":{"track":"inbound","chunk":"${chunk}","timestamp":"${(chunk - 1) * FRAME_MS}${c.tail}`);
      if (c.nextPressAt > 0 && nowAbs >= c.nextPressAt) {
        while (c.nextPressAt <= nowAbs) c.nextPressAt += pressPeriod;
        if (!c.inPlay && now - c.idleSince >= IDLE_MS) {
          presses.push([c.idx, abs()]);
          dtmf(c, PRESS_DIGIT);
        } else skippedPresses++;
      }
    }
  }
  clockTimer = setTimeout(tick, Math.max(0, epoch + nextSlot * BUCKET_MS - performance.now()));
}

function snapshot(windows: Window[]): LoadSnapshot {
  const gaps: number[][] = windows.map(() => []);
  for (let i = 0; i < gapN; i += 2) {
    const at = gapBuf[i] as number;
    windows.forEach(([a, b], w) => {
      if (at >= a && at < b) (gaps[w] as number[]).push(gapBuf[i + 1] as number);
    });
  }
  const sids: Record<number, string> = {};
  for (const c of calls) sids[c.idx] = c.callSid;
  return {
    streaming: streamingCount,
    failed,
    failures,
    droppedByServer,
    sids,
    presses,
    skippedPresses,
    plays,
    clears,
    gaps,
    bigGaps,
    loopMax: loop.maxIn(windows),
  };
}

async function start(conf: Extract<LoadCommand, { type: 'start' }>): Promise<void> {
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
      idx, callSid: `CA${hex}`, streamSid: '', ws: null, streaming: false, closedByUs: false, seq: 0, chunk: 0, tail: '',
      consentAnswered: false, inPlay: false, last: 0, idleSince: 0, nextPressAt: 0,
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
  loop.stop();
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
  closeAgent();
  send({ type: 'stopped' });
  setTimeout(() => process.exit(0), 50);
}

process.on('message', (raw) => {
  const cmd = raw as LoadCommand;
  if (cmd.type === 'start') void start(cmd);
  else if (cmd.type === 'press') {
    pressPeriod = cmd.periodMs;
    const total = cfg?.total ?? 1;
    for (const c of calls) c.nextPressAt = cmd.startAt + (c.idx / total) * cmd.periodMs;
  } else if (cmd.type === 'halt') {
    for (const c of calls) c.nextPressAt = 0;
  } else if (cmd.type === 'snapshot') send({ type: 'snapshot', snap: snapshot(cmd.windows) });
  else if (cmd.type === 'stop') void stop();
});
process.once('disconnect', () => process.exit(0));
