/**
 * The baseline for bench/webrtc.bench.ts: the media stack alone, no gateway.
 * An HTTP server answering `POST /webrtc/offer` with a werift peer (the same
 * ICE-lite configuration and codec wrappers as the gateway: ingress/webrtc/
 * peer.ts and opus.ts), which Opus-decodes every inbound packet to 16 kHz and,
 * from one drift-correcting 20 ms clock, Opus-encodes and sends one frame of a
 * tone per peer per slot (continuously — the gateway only sends while the
 * agent talks, see its framesOut beside this one's). No store, no agent, no
 * pipeline.
 */
import http from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { OPUS_DEFAULT_COMPLEXITY, OPUS_FRAME, OPUS_RTP_TICKS_PER_FRAME, OpusDecoder, OpusEncoder } from '../../ingress/webrtc/opus.ts';
import { WebrtcPeer } from '../../ingress/webrtc/peer.ts';
import { mainThreadCpuMs, ownCpuMs, send } from './children.ts';
import { FRAME_MS, type ServerCommand, type ServerStats } from './shared.ts';

const LATE_MS = 40;
const cfg = { iceServers: [], hostAddresses: ['127.0.0.1'], portRange: undefined, demo: false, opusComplexity: OPUS_DEFAULT_COMPLEXITY, resumeGraceMs: 60_000 };
const tone = new Int16Array(OPUS_FRAME * 50);
for (let i = 0; i < tone.length; i++) tone[i] = Math.round(6000 * Math.sin((2 * Math.PI * 440 * i) / 16000));

interface Conn {
  peer: WebrtcPeer;
  dec: OpusDecoder;
  enc: OpusEncoder;
  n: number;
}
const conns = new Set<Conn>();
let framesIn = 0;
let framesOut = 0;
let late = 0;
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
let elu0 = performance.eventLoopUtilization();

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || !req.url?.startsWith('/webrtc/offer')) {
    res.writeHead(404).end();
    return;
  }
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    WebrtcPeer.answer(body, cfg).then(
      ({ peer, answer }) => {
        const c: Conn = { peer, dec: new OpusDecoder(), enc: new OpusEncoder({ complexity: cfg.opusComplexity }), n: 0 };
        peer.onRtp((p) => {
          if (p.payload.length < 3) return; // not Opus audio (e.g. an RFC 4733 event)
          try {
            framesIn += c.dec.decode(p.payload).length;
          } catch {
            /* corrupt: ignored */
          }
        });
        peer.onState((s) => {
          if (s === 'connected') conns.add(c);
          if (s === 'failed' || s === 'closed' || s === 'disconnected') {
            conns.delete(c);
            c.dec.close();
            c.enc.close();
            peer.close();
          }
        });
        res.writeHead(201, { 'content-type': 'application/sdp' }).end(answer);
      },
      (err: Error) => res.writeHead(400).end(err.message),
    );
  });
});

const epoch = performance.now();
let nextSlot = 0;
let encodeFailureLogged = false;
function tick(): void {
  const due = Math.floor((performance.now() - epoch) / FRAME_MS) + 1;
  if (due - nextSlot > 10) nextSlot = due - 10;
  while (nextSlot < due) {
    const slotTime = epoch + nextSlot * FRAME_MS;
    nextSlot++;
    for (const c of conns) {
      const off = (c.n++ % 50) * OPUS_FRAME;
      try {
        c.peer.sendOpus(c.enc.encode(tone.subarray(off, off + OPUS_FRAME)), OPUS_RTP_TICKS_PER_FRAME, 0);
        framesOut++;
      } catch (err) {
        // An encode failure counts as a late frame and is reported, as the gateway does, instead of dying
        // (opusscript, used before, failed here past ~30–40 codecs in one process).
        late++;
        if (!encodeFailureLogged) console.error(`bare server: Opus encode failed: ${(err as Error).message}`);
        encodeFailureLogged = true;
      }
      if (performance.now() - slotTime > LATE_MS) late++;
    }
  }
  setTimeout(tick, Math.max(0, epoch + nextSlot * FRAME_MS - performance.now()));
}

const totals = (): ServerStats => ({ cpuMs: ownCpuMs(), late, framesOut, framesIn, loopP99Ms: Math.max(0, eld.percentile(99) / 1e6 - 10), loopUtil: 0, mainCpuMs: mainThreadCpuMs() });
let base = totals();
process.on('message', (raw) => {
  const cmd = raw as ServerCommand;
  if (cmd.type === 'reset') {
    base = totals();
    eld.reset();
    elu0 = performance.eventLoopUtilization();
    send({ type: 'stats', stats: base });
  } else if (cmd.type === 'snapshot') {
    const t = totals();
    send({ type: 'stats', stats: { cpuMs: t.cpuMs - base.cpuMs, late: t.late - base.late, framesOut: t.framesOut - base.framesOut, framesIn: t.framesIn - base.framesIn, loopP99Ms: t.loopP99Ms, loopUtil: performance.eventLoopUtilization(elu0).utilization, mainCpuMs: t.mainCpuMs - base.mainCpuMs } });
  } else if (cmd.type === 'stop') {
    for (const c of conns) c.peer.close();
    server.close();
    process.exit(0);
  }
});
process.once('disconnect', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  tick();
  send({ type: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
});
