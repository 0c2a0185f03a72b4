/**
 * A WebRTC caller for tests: a werift client peer doing what the browser SDK
 * (phone/sdk.ts) does, without a browser. POST /webrtc/offer with a complete
 * offer (full ICE against the gateway's ICE-lite; host candidate 127.0.0.1,
 * no STUN: run it inside a private network namespace, helpers/netns.ts), Opus
 * at 16 kHz (ingress/webrtc/opus.ts) in 20 ms packets paced in real time —
 * silence when idle, as a browser sends Opus continuously —, DTMF as RFC 4733
 * telephone-events, hang-up with DELETE /webrtc/SESSION, and, when the peer
 * connection drops without the gateway saying the call ended, a new peer
 * connection offered with the session token (`?resume=`), as the SDK does.
 *
 * Agent talk spurts are measured like rtp-caller.ts (the gateway sends nothing
 * between plays): one that started before the caller spoke and ended while
 * they spoke is counted as cut off (`cutOff`).
 */
import { performance } from 'node:perf_hooks';
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, useOPUS, type RTCRtpTransceiver } from 'werift';
import { OPUS_FRAME, OPUS_RTP_TICKS_PER_FRAME, OpusDecoder, OpusEncoder } from '../../ingress/webrtc/opus.ts';

const FRAME_MS = 20;
const SPURT_GAP_MS = 120;
const RTCP_SILENCE_MS = 5000;
const DIGITS = '0123456789*#ABCD';
const SILENCE = new Int16Array(OPUS_FRAME);

interface Leg {
  pc: RTCPeerConnection;
  t: RTCRtpTransceiver;
  opusPt: number;
  eventPt: number | null;
}

export type OfferOutcome = { status: number; body: string; retryAfter?: string };

export class WebrtcClient {
  token: string | null = null;
  session: string | null = null;
  callId: string | null = null;
  /** Peer connections that reached `connected`. */
  streams = 0;
  readonly received: Int16Array[] = [];
  receivedSamples = 0;
  readonly protocolErrors: string[] = [];
  cutOff = 0;
  /** The gateway said the call is over (data channel `ended`), or we hung up. */
  ended = false;
  private leg: Leg | null = null;
  private readonly encoder = new OpusEncoder();
  private readonly decoder = new OpusDecoder();
  private readonly queue: Array<{ pcm: Int16Array; off: number; done: () => void }> = [];
  private readonly events: Array<{ marker: boolean; end: boolean; duration: number; event: number }> = [];
  private eventTs = 0;
  private seq = 1000;
  private ts = 5000;
  private clock: NodeJS.Timeout | null = null;
  private start = 0;
  private frames = 0;
  private spurt: { start: number; last: number } | null = null;
  private speakingSince: number | null = null;
  private readonly spurtTimer = setInterval(() => this.closeSpurt(), 20);
  private resuming = false;
  /** When the gateway last sent an RTCP report on the current connection (its liveness: see `watch`). */
  private lastRtcp = 0;
  private readonly watchdog = setInterval(() => this.watch(), 500);
  private closed = false;

  /**
   * `exchange`: posts the offer somewhere else than `/webrtc/offer` and gives back the answer (a supervisor joining a
   * call: POST /v1/calls/:id/supervise); such a leg never resumes (it has no token).
   */
  constructor(private readonly o: { baseUrl: string; to: string; exchange?: (offer: string) => Promise<{ status: number; sdp: string }> }) {}

  /** Connects through `exchange` (see the constructor): the outcome, as `dial`'s. */
  async join(): Promise<OfferOutcome> {
    return this.negotiate('');
  }

  /** A new call: the offer's HTTP outcome; on 201 resolves once connected (or the connection failed). */
  async dial(): Promise<OfferOutcome> {
    return this.negotiate(`to=${encodeURIComponent(this.o.to)}`);
  }

  /** Plays 16 kHz PCM in real time; resolves once the last frame was sent. */
  async speak(pcm: Int16Array): Promise<void> {
    this.speakingSince = performance.now();
    try {
      await new Promise<void>((done) => this.queue.push({ pcm, off: 0, done }));
    } finally {
      this.speakingSince = null;
    }
  }

  /** One RFC 4733 event (about 100 ms) in place of audio frames; false without a negotiated telephone-event. */
  sendDtmf(digit: string): boolean {
    const event = DIGITS.indexOf(digit.toUpperCase());
    if (event < 0 || !this.leg || this.leg.eventPt === null) return false;
    for (let i = 1; i <= 8; i++) this.events.push({ marker: i === 1, end: i > 5, duration: Math.min(i, 5) * 160, event });
    return true;
  }

  /** Hangs up as the SDK does: DELETE the session, close the peer connection. */
  async hangup(): Promise<number | null> {
    this.ended = true;
    const status = this.session ? (await fetch(`${this.o.baseUrl}/webrtc/${this.session}`, { method: 'DELETE' })).status : null;
    await this.closeLeg();
    return status;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ended = true;
    clearInterval(this.spurtTimer);
    clearInterval(this.watchdog);
    await this.closeLeg();
    for (const q of this.queue.splice(0)) q.done();
    this.encoder.close();
    this.decoder.close();
  }

  private async closeLeg(): Promise<void> {
    if (this.clock) clearTimeout(this.clock);
    this.clock = null;
    const leg = this.leg;
    this.leg = null;
    await leg?.pc.close().catch(() => undefined);
  }

  private async negotiate(query: string): Promise<OfferOutcome> {
    const pc = new RTCPeerConnection({
      iceServers: [],
      iceAdditionalHostAddresses: ['127.0.0.1'],
      iceUseIpv6: false,
      // One transport from the start: with "balanced", werift drops the data channel's own ICE transport when
      // the answer bundles it, without closing its UDP socket (which then keeps the test process alive).
      bundlePolicy: 'max-bundle',
      codecs: { audio: [useOPUS(), new RTCRtpCodecParameters({ mimeType: 'audio/telephone-event', clockRate: 8000, channels: 1 })], video: [] },
    });
    const t = pc.addTransceiver('audio', { direction: 'sendrecv' });
    const dc = pc.createDataChannel('switchboard');
    dc.onMessage.subscribe((m) => this.onData(m));
    t.onTrack.subscribe((track) => track.onReceiveRtp.subscribe((p) => this.onRtp(pc, p.header.payloadType, p.payload)));
    t.sender.onRtcp.subscribe(() => void (this.leg?.pc === pc && (this.lastRtcp = performance.now())));
    await pc.setLocalDescription(await pc.createOffer());
    if (pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const sub = pc.iceGatheringStateChange.subscribe((s) => s === 'complete' && (sub.unSubscribe(), resolve()));
        setTimeout(resolve, 5000);
      });
    }
    const offer = pc.localDescription?.sdp ?? '';
    let status: number;
    let body: string;
    let headers: Headers | null = null;
    if (this.o.exchange) {
      const r = await this.o.exchange(offer);
      status = r.status;
      body = r.sdp;
    } else {
      const res = await fetch(`${this.o.baseUrl}/webrtc/offer?${query}`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
      status = res.status;
      body = await res.text();
      headers = res.headers;
    }
    if (status !== 201) {
      await pc.close();
      const retryAfter = headers?.get('retry-after');
      return { status, body, ...(retryAfter ? { retryAfter } : {}) };
    }
    this.token = headers?.get('x-switchboard-resume') ?? this.token;
    this.callId = headers?.get('x-switchboard-call') ?? this.callId;
    this.session = (headers?.get('location') ?? '').split('/').pop() || this.session;
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    const pt = (name: string): number | null => Number(new RegExp(`^a=rtpmap:(\\d+) ${name}/`, 'mi').exec(body)?.[1] ?? NaN) || null;
    const opusPt = pt('opus');
    if (opusPt === null) this.protocolErrors.push('the answer has no Opus');
    const leg: Leg = { pc, t, opusPt: opusPt ?? 111, eventPt: pt('telephone-event') };
    const ok = await new Promise<boolean>((resolve) => {
      if (pc.connectionState === 'connected') return resolve(true);
      const timer = setTimeout(() => resolve(false), 20_000);
      pc.connectionStateChange.subscribe((s) => {
        if (s === 'connected') (clearTimeout(timer), resolve(true));
        else if (s === 'failed' || s === 'closed') (clearTimeout(timer), resolve(false));
      });
    });
    if (!ok || this.closed) {
      await pc.close();
      return { status: 0, body: `peer connection ${pc.connectionState}` };
    }
    const previous = this.leg;
    this.leg = leg;
    await previous?.pc.close().catch(() => undefined);
    this.streams++;
    this.lastRtcp = performance.now();
    pc.connectionStateChange.subscribe((s) => {
      if (this.leg !== leg) return;
      if (s === 'failed' || s === 'closed') void this.resume();
      else if (s === 'disconnected') setTimeout(() => this.leg === leg && pc.connectionState === 'disconnected' && void this.resume(), 2000);
    });
    this.startClock();
    return { status: 201, body };
  }

  /** The connection dropped and the call is not over: new peer connections with the token until one connects. */
  private async resume(): Promise<void> {
    if (this.resuming || this.ended || !this.token) return;
    this.resuming = true;
    await this.closeLeg();
    try {
      const until = Date.now() + 30_000;
      while (!this.ended && Date.now() < until) {
        const r = await this.negotiate(`resume=${encodeURIComponent(this.token)}`).catch((err: Error) => ({ status: -1, body: err.message }));
        if (r.status === 201) return;
        if (r.status === 410) return void (this.ended = true);
        await new Promise((res) => setTimeout(res, 1000));
      }
    } finally {
      this.resuming = false;
    }
  }

  /**
   * Liveness, in place of ICE consent freshness (RFC 7675), which werift does not run: the gateway's receiver
   * sends an RTCP report every 0.5–1.5 s while our stream reaches it; none for RTCP_SILENCE_MS means the
   * connection is gone (a browser would go `disconnected`), and the SDK's answer to that is a resume.
   */
  private watch(): void {
    if (!this.leg || this.resuming || this.ended || performance.now() - this.lastRtcp < RTCP_SILENCE_MS) return;
    void this.resume();
  }

  private startClock(): void {
    if (this.clock) clearTimeout(this.clock);
    this.start = performance.now();
    this.frames = 0;
    this.tick();
  }

  private readonly tick = (): void => {
    this.clock = null;
    const leg = this.leg;
    if (!leg || this.closed) return;
    const due = Math.floor((performance.now() - this.start) / FRAME_MS) + 1;
    if (due - this.frames > 10) this.frames = due - 10; // a stalled loop does not burst seconds of audio
    for (; this.frames < due; this.frames++) this.sendFrame(leg);
    this.clock = setTimeout(this.tick, Math.max(0, this.start + this.frames * FRAME_MS - performance.now()));
  };

  private sendFrame(leg: Leg): void {
    const ev = this.events.shift();
    if (ev && leg.eventPt !== null) {
      if (ev.marker) this.eventTs = this.ts;
      const payload = Buffer.from([ev.event, (ev.end ? 0x80 : 0) | 10, ev.duration >> 8, ev.duration & 0xff]);
      this.rtp(leg, leg.eventPt, ev.marker, this.eventTs, payload);
    } else {
      const item = this.queue[0];
      let frame = SILENCE;
      if (item) {
        frame = new Int16Array(OPUS_FRAME);
        frame.set(item.pcm.subarray(item.off, Math.min(item.off + OPUS_FRAME, item.pcm.length)));
        item.off += OPUS_FRAME;
        if (item.off >= item.pcm.length) (this.queue.shift(), item.done());
      }
      this.rtp(leg, leg.opusPt, false, this.ts, this.encoder.encode(frame));
    }
    this.ts = (this.ts + OPUS_RTP_TICKS_PER_FRAME) >>> 0;
  }

  private rtp(leg: Leg, pt: number, marker: boolean, timestamp: number, payload: Buffer): void {
    const sender = leg.t.sender;
    const header = new RtpHeader({ payloadType: pt, sequenceNumber: this.seq, timestamp, marker, ssrc: sender.ssrc });
    this.seq = (this.seq + 1) & 0xffff;
    // werift's sender.sendRtp stamps its one codec's payload type on every packet: telephone-events go to the
    // transport directly (same SSRC and sequence space; the sender adds no offsets until a track is replaced).
    if (pt === leg.eventPt) sender.dtlsTransport.sendRtp(payload, header).catch(() => undefined);
    else sender.sendRtp(new RtpPacket(header, payload)).catch(() => undefined);
  }

  private onRtp(pc: RTCPeerConnection, pt: number, payload: Buffer): void {
    if (this.leg?.pc !== pc) return;
    if (pt !== this.leg.opusPt) return void this.protocolErrors.push(`agent RTP with payload type ${pt}, not the answer's Opus ${this.leg.opusPt}`);
    try {
      for (const f of this.decoder.decode(payload)) {
        this.received.push(f);
        this.receivedSamples += f.length;
      }
    } catch (err) {
      return void this.protocolErrors.push(`agent Opus does not decode: ${(err as Error).message}`);
    }
    const now = performance.now();
    if (!this.spurt) this.spurt = { start: now, last: now };
    else this.spurt.last = now;
  }

  private onData(m: string | Buffer): void {
    try {
      const msg = JSON.parse(typeof m === 'string' ? m : m.toString('utf8')) as { type?: unknown };
      if (msg.type === 'ended') this.ended = true;
    } catch {
      this.protocolErrors.push(`data channel message is not JSON: ${String(m).slice(0, 80)}`);
    }
  }

  private closeSpurt(): void {
    const s = this.spurt;
    if (!s || performance.now() - s.last < SPURT_GAP_MS) return;
    this.spurt = null;
    if (this.speakingSince !== null && s.start < this.speakingSince && s.last >= this.speakingSince) this.cutOff++;
  }
}
