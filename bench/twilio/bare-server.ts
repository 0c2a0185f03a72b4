/**
 * The floor for bench/twilio.bench.ts: a bare `ws` server that accepts the same
 * Twilio Media Stream connections and does the least a media gateway must do.
 *
 *   POST /twilio/voice → a static TwiML <Connect><Stream> (no signature check, no store)
 *   WS /twilio/media   → JSON.parse every message; media → Buffer.from(payload, 'base64')
 *
 * Outbound, to carry the same load as the gateway: on `start` it queues a
 * "greeting" of BARE_GREETING_FRAMES frames and on each `dtmf` a "reply" of
 * BARE_REPLY_FRAMES frames (CONSENT_DIGIT excepted; the lengths of the gateway's real clips, measured
 * by the orchestrator), with a mark every 10 frames and an end mark, named as
 * the gateway names them (p:<id>:<ms>, e:<id>). Frames leave from ONE shared
 * drift-correcting 20 ms timer (like media/pacer.ts MediaClock): each frame is
 * µ-law bytes → base64 → the same JSON envelope → ws.send. Send lateness
 * (slot time → ws.send returned) is measured exactly as the gateway probe does.
 *
 * IPC: as gateway-child.ts.
 */
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';
import { CONSENT_DIGIT, FRAME_MS, Hist, LATE_MS, observeGc, send, type ProbeCommand, type ServerStats } from './shared.ts';

const PORT = Number(process.env.BARE_PORT ?? 0);
const GREETING = Number(process.env.BARE_GREETING_FRAMES ?? 225);
const REPLY = Number(process.env.BARE_REPLY_FRAMES ?? 60);
const MARK_EVERY = 10; // 200 ms, as media/pipeline.ts PROGRESS_MS
/** A µ-law frame that is not silence, so base64 does real work (content is irrelevant to cost). */
const FRAME = Buffer.from(Array.from({ length: 160 }, (_, i) => (i * 37) & 0xff));

interface Conn {
  ws: WebSocket;
  streamSid: string;
  /** Frames left in the current play, then the queued plays' lengths. */
  left: number;
  queue: number[];
  playId: number;
  sentInPlay: number;
}

const conns = new Set<Conn>();
const active: Conn[] = []; // conns with audio queued (rebuilt lazily)
const sendLateness = new Hist();
let framesSent = 0;
let lateFrames = 0;
let maxLateness = 0;
let mediaIn = 0;
let bytesIn = 0;
let slots = 0;
let skippedSlots = 0;
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
const ticks = new Hist();
let tickTotal = 0;
const gcs = new Hist();
let gcTotal = 0;
observeGc((ms) => {
  gcs.add(ms);
  gcTotal += ms;
});

const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/twilio/voice') {
    req.resume();
    req.on('end', () => {
      const host = `127.0.0.1:${port}`;
      const body =
        `<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="ws://${host}/twilio/media">` +
        `<Parameter name="token" value="bare"/></Stream></Connect><Redirect method="POST">http://${host}/twilio/voice</Redirect></Response>`;
      res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    return;
  }
  res.writeHead(404).end();
});
server.on('upgrade', (req, socket, head) => {
  if (!req.url?.startsWith('/twilio/media')) return void socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => accept(ws));
});

function enqueuePlay(c: Conn, frames: number): void {
  if (c.left === 0) {
    c.left = frames;
    c.playId++;
    c.sentInPlay = 0;
    if (!active.includes(c)) active.push(c);
  } else c.queue.push(frames);
}

function accept(ws: WebSocket): void {
  const c: Conn = { ws, streamSid: '', left: 0, queue: [], playId: 0, sentInPlay: 0 };
  conns.add(c);
  ws.on('message', (data: Buffer, isBinary) => {
    if (isBinary) return;
    const msg = JSON.parse(data.toString()) as { event?: string; streamSid?: string; media?: { payload?: string } };
    if (msg.event === 'media') {
      const bytes = Buffer.from(msg.media?.payload ?? '', 'base64');
      bytesIn += bytes.length;
      mediaIn++;
    } else if (msg.event === 'start') {
      c.streamSid = msg.streamSid ?? '';
      enqueuePlay(c, GREETING);
    } else if (msg.event === 'dtmf') {
      // The client's consent answer is not a turn here (the bare server has no consent prompt).
      if ((msg as { dtmf?: { digit?: string } }).dtmf?.digit !== CONSENT_DIGIT) enqueuePlay(c, REPLY);
    } else if (msg.event === 'stop') {
      ws.close(1000, 'stopped');
    }
  });
  ws.on('close', () => {
    conns.delete(c);
    c.left = 0;
    c.queue.length = 0;
  });
  ws.on('error', () => undefined);
}

function sendFrame(c: Conn): void {
  const ws = c.ws;
  if (ws.readyState !== ws.OPEN) return;
  ws.send(`{"event":"media","streamSid":${JSON.stringify(c.streamSid)},"media":{"payload":"${FRAME.toString('base64')}"}}`);
  c.sentInPlay++;
  c.left--;
  if (c.left === 0) {
    ws.send(JSON.stringify({ event: 'mark', streamSid: c.streamSid, mark: { name: `p:${c.playId}:${c.sentInPlay * FRAME_MS}` } }));
    ws.send(JSON.stringify({ event: 'mark', streamSid: c.streamSid, mark: { name: `e:${c.playId}` } }));
    const next = c.queue.shift();
    if (next !== undefined) {
      c.left = next;
      c.playId++;
      c.sentInPlay = 0;
    }
  } else if (c.sentInPlay % MARK_EVERY === 0) {
    ws.send(JSON.stringify({ event: 'mark', streamSid: c.streamSid, mark: { name: `p:${c.playId}:${c.sentInPlay * FRAME_MS}` } }));
  }
}

// One shared drift-correcting clock: slot n is due at epoch + 20n; a late tick catches up (≤ 10 slots).
const epoch = performance.now();
let nextSlot = 0;
function tick(): void {
  const now = performance.now();
  runSlots(now);
  const d = performance.now() - now;
  ticks.add(d);
  tickTotal += d;
  setTimeout(tick, Math.min(FRAME_MS, Math.max(0, epoch + nextSlot * FRAME_MS - performance.now())));
}

function runSlots(now: number): void {
  const due = Math.floor((now - epoch) / FRAME_MS) + 1;
  if (due - nextSlot > 10) {
    skippedSlots += due - 10 - nextSlot;
    nextSlot = due - 10;
  }
  while (nextSlot < due) {
    const slotTime = epoch + nextSlot * FRAME_MS;
    nextSlot++;
    slots++;
    let w = 0;
    for (let i = 0; i < active.length; i++) {
      const c = active[i] as Conn;
      if (c.left > 0) {
        sendFrame(c);
        const late = performance.now() - slotTime;
        sendLateness.add(late);
        framesSent++;
        if (late > LATE_MS) lateFrames++;
        if (late > maxLateness) maxLateness = late;
      }
      if (c.left > 0) active[w++] = c;
    }
    active.length = w;
  }
}

function snapshot(): ServerStats {
  // The histogram records whole timer intervals (resolution + delay): subtract the 10 ms resolution.
  const ms = (ns: number): number => Math.max(0, ns / 1e6 - 10);
  return {
    sendLateness: sendLateness.toJSON(),
    loopDelay: { p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max), mean: ms(eld.mean) },
    framesSent,
    lateFrames,
    maxLatenessMs: maxLateness,
    skippedSlots,
    mediaIn,
    droppedIn: 0,
    streams: conns.size,
    heapUsedMb: process.memoryUsage().heapUsed / 1048576,
    blocking: {
      clockTick: { n: ticks.count, totalMs: tickTotal, p50: ticks.percentile(50), p99: ticks.percentile(99), max: ticks.max },
      gc: { n: gcs.count, totalMs: gcTotal, p50: gcs.percentile(50), p99: gcs.percentile(99), max: gcs.max },
    },
    extra: { bytesIn, slots },
  };
}

process.on('message', (raw) => {
  const cmd = raw as ProbeCommand;
  if (cmd.type === 'reset') {
    sendLateness.reset();
    framesSent = 0;
    lateFrames = 0;
    maxLateness = 0;
    mediaIn = 0;
    bytesIn = 0;
    skippedSlots = 0;
    eld.reset();
    ticks.reset();
    tickTotal = 0;
    gcs.reset();
    gcTotal = 0;
    send({ type: 'stats', stats: snapshot() });
  } else if (cmd.type === 'snapshot') {
    send({ type: 'stats', stats: snapshot() });
  } else if (cmd.type === 'stop') {
    for (const c of conns) c.ws.terminate();
    server.close();
    process.exit(0);
  }
});
process.once('disconnect', () => process.exit(0));

let port = 0;
server.listen(PORT, '127.0.0.1', () => {
  const addr = server.address();
  port = typeof addr === 'object' && addr ? addr.port : PORT;
  tick();
  send({ type: 'listening', port });
});
