/**
 * Load worker for bench/webrtc.bench.ts: `calls` werift client peers
 * (offerer, full ICE against the server's ICE-lite, host candidate
 * 127.0.0.1, no STUN — run inside a private network namespace). Each POSTs its
 * complete offer to `url`, then sends one Opus packet of a 440 Hz tone every
 * 20 ms (50 frames encoded once at 16 kHz, looped: the
 * generator's CPU stays small), opens a data channel and sends
 * `{"type":"dtmf","digit":"2"}` (declines the demo number's consent: the call
 * goes on unrecorded) and then digit 5 every `dtmfMs` so the agent keeps
 * talking. Received packets are counted; a gap > 40 ms between consecutive
 * packets of one talkspurt (RTP timestamps exactly 960 apart) counts as a stall.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, useOPUS, type RTCDataChannel, type RTCRtpTransceiver } from 'werift';
import { OPUS_FRAME, OPUS_RTP_TICKS_PER_FRAME, OpusEncoder } from '../../ingress/webrtc/opus.ts';
import { ownCpuMs, send } from './children.ts';
import { FRAME_MS, GAP_MS, type LoadCommand, type LoadStats } from './shared.ts';

const tone = new Int16Array(OPUS_FRAME);
const FRAMES: Buffer[] = [];
{
  const enc = new OpusEncoder();
  for (let f = 0; f < 50; f++) {
    for (let i = 0; i < OPUS_FRAME; i++) tone[i] = Math.round(6000 * Math.sin((2 * Math.PI * 440 * (f * OPUS_FRAME + i)) / 16000));
    FRAMES.push(Buffer.from(enc.encode(tone)));
  }
  enc.close();
}

interface Client {
  pc: RTCPeerConnection;
  t: RTCRtpTransceiver;
  dc: RTCDataChannel;
  seq: number;
  ts: number;
  n: number;
  connected: boolean;
  lastRx: number;
  lastRxTs: number | null;
  dtmf: NodeJS.Timeout | null;
}

const clients: Client[] = [];
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
const failures: Record<string, number> = {};
let failed = 0;
let packetsSent = 0;
let packetsReceived = 0;
let gaps = 0;
let maxGapMs = 0;
let cpuBase = ownCpuMs();

function fail(why: string): void {
  failed++;
  failures[why] = (failures[why] ?? 0) + 1;
}

async function call(url: string, dtmfMs: number): Promise<void> {
  const pc = new RTCPeerConnection({
    iceServers: [],
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceUseIpv6: false,
    codecs: { audio: [useOPUS(), new RTCRtpCodecParameters({ mimeType: 'audio/telephone-event', clockRate: 8000, channels: 1 })], video: [] },
  });
  const t = pc.addTransceiver('audio', { direction: 'sendrecv' });
  const dc = pc.createDataChannel('switchboard');
  const c: Client = { pc, t, dc, seq: 1000, ts: 5000, n: 0, connected: false, lastRx: 0, lastRxTs: null, dtmf: null };
  t.onTrack.subscribe((track) =>
    track.onReceiveRtp.subscribe((p) => {
      const now = performance.now();
      packetsReceived++;
      const ts = p.header.timestamp;
      if (c.lastRxTs !== null && ((ts - c.lastRxTs) >>> 0) === OPUS_RTP_TICKS_PER_FRAME) {
        const gap = now - c.lastRx;
        if (gap > GAP_MS) gaps++;
        if (gap > maxGapMs) maxGapMs = gap;
      }
      c.lastRx = now;
      c.lastRxTs = ts;
    }),
  );
  dc.stateChanged.subscribe((s) => {
    if (s !== 'open') return;
    setTimeout(() => {
      if (dc.readyState === 'open') dc.send(JSON.stringify({ type: 'dtmf', digit: '2' }));
      if (dtmfMs > 0)
        c.dtmf = setInterval(() => {
          if (dc.readyState === 'open') dc.send(JSON.stringify({ type: 'dtmf', digit: '5' }));
        }, dtmfMs);
    }, 1500);
  });
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise<void>((resolve) => {
      const sub = pc.iceGatheringStateChange.subscribe((s) => {
        if (s === 'complete') {
          sub.unSubscribe();
          resolve();
        }
      });
      setTimeout(resolve, 5000);
    });
  }
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription?.sdp ?? '' });
  if (res.status !== 201) {
    await pc.close();
    throw new Error(`offer ${res.status}`);
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  const ok = await new Promise<boolean>((resolve) => {
    if (pc.connectionState === 'connected') return resolve(true);
    const timer = setTimeout(() => resolve(false), 20_000);
    pc.connectionStateChange.subscribe((s) => {
      if (s === 'connected') {
        clearTimeout(timer);
        resolve(true);
      } else if (s === 'failed' || s === 'closed') {
        clearTimeout(timer);
        resolve(false);
      }
    });
  });
  if (!ok) {
    await pc.close();
    throw new Error('not connected');
  }
  c.connected = true;
  clients.push(c);
}

// One 20 ms clock for every client's outbound packet.
const epoch = performance.now();
let nextSlot = 0;
function tick(): void {
  const due = Math.floor((performance.now() - epoch) / FRAME_MS) + 1;
  if (due - nextSlot > 10) nextSlot = due - 10;
  while (nextSlot < due) {
    nextSlot++;
    for (const c of clients) {
      if (!c.connected) continue;
      const header = new RtpHeader({ payloadType: 111, sequenceNumber: c.seq, timestamp: c.ts, marker: c.n === 0 });
      c.seq = (c.seq + 1) & 0xffff;
      c.ts = (c.ts + OPUS_RTP_TICKS_PER_FRAME) >>> 0;
      c.t.sender.sendRtp(new RtpPacket(header, FRAMES[c.n++ % FRAMES.length] as Buffer)).catch(() => undefined);
      packetsSent++;
    }
  }
  setTimeout(tick, Math.max(0, epoch + nextSlot * FRAME_MS - performance.now()));
}
tick();

function stats(): LoadStats {
  const now = performance.now();
  return {
    connected: clients.length,
    failed,
    alive: clients.filter((c) => c.connected && now - c.lastRx < 2000 && c.pc.connectionState === 'connected').length,
    packetsSent,
    packetsReceived,
    gaps,
    maxGapMs,
    loopP99Ms: Math.max(0, eld.percentile(99) / 1e6 - 10),
    cpuMs: ownCpuMs() - cpuBase,
    failures,
  };
}

process.on('message', (raw) => {
  const cmd = raw as LoadCommand;
  if (cmd.type === 'start') {
    void (async () => {
      const pending: Array<Promise<void>> = [];
      for (let i = 0; i < cmd.calls; i++) {
        pending.push(call(cmd.url, cmd.dtmfMs).catch((err: Error) => fail(err.message)));
        await new Promise((r) => setTimeout(r, cmd.intervalMs));
      }
      await Promise.all(pending);
      send({ type: 'ready', stats: stats() });
    })();
  } else if (cmd.type === 'reset') {
    packetsSent = 0;
    packetsReceived = 0;
    gaps = 0;
    maxGapMs = 0;
    cpuBase = ownCpuMs();
    eld.reset();
    send({ type: 'stats', stats: stats() });
  } else if (cmd.type === 'snapshot') {
    send({ type: 'stats', stats: stats() });
  } else if (cmd.type === 'stop') {
    for (const c of clients) {
      if (c.dtmf) clearInterval(c.dtmf);
      c.pc.close().catch(() => undefined);
    }
    setTimeout(() => process.exit(0), 300);
  }
});
process.once('disconnect', () => process.exit(0));
