/**
 * Switchboard browser SDK: one call from a browser to a Switchboard agent over
 * WebRTC (served bundled at /phone/sdk.js as an ES module).
 *
 *   const call = await SwitchboardCall.start({ to: 'demo' });   // or no `to`: the demo number
 *   call.addEventListener('state', () => console.log(call.state));
 *   call.addEventListener('transcript', (e) => console.log(e.detail));  // {channel, text, start_ms}
 *   call.sendDtmf('1'); call.setMuted(true); await call.hangup();
 *
 * Wire: WHIP-style `POST /webrtc/offer` (SDP offer with all candidates → 201,
 * Location, X-Switchboard-Resume token, SDP answer). DTMF goes as RFC 4733 in
 * the audio (RTCDTMFSender), or on the data channel where that is not possible.
 * When the connection drops (network change, gateway restart) the SDK offers a
 * new peer connection with `?resume=TOKEN` until the gateway takes it back or
 * says the call is over; the agent carries on. The same token opens
 * `WS /v1/subscribe` to read this call's row, consent and transcript: `info`
 * events carry the consent (outcome and mode) and, once the call is over, the
 * end reason the gateway recorded (`info.end_reason`). When that socket reopens, each subscription resumes
 * from the last seq it saw (`since`): the deltas it missed, not a new snapshot.
 */

export type CallState = 'connecting' | 'connected' | 'reconnecting' | 'ended';

export interface TranscriptLine {
  id: string;
  channel: 'caller' | 'agent';
  text: string;
  start_ms: number;
}

export interface CallInfo {
  state: string;
  /** Why the call ended, as the gateway recorded it (e.g. `webrtc: media never connected`). */
  end_reason: string | null;
  consent: 'pending' | 'granted' | 'declined' | 'no_response' | 'withdrawn' | null;
  /** The consent policy's mode: what the caller is asked while consent is pending. */
  consent_mode: 'opt-in' | 'opt-out' | 'notify' | null;
}

export interface StartOptions {
  /** Number or number name to call; empty/absent: the gateway's demo number. */
  to?: string;
  /** Gateway origin; default: this page's. */
  baseUrl?: string;
  /** A microphone stream to use instead of asking for one. */
  stream?: MediaStream;
  /** Where to play the agent (an <audio> element); created if absent. */
  audio?: HTMLAudioElement;
  /** How long to keep trying to resume a dropped call (ms). Default 90 s. */
  resumeForMs?: number;
}

export class CallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class SwitchboardCall extends EventTarget {
  state: CallState = 'connecting';
  callId = '';
  session = '';
  token = '';
  endReason = '';
  readonly info: CallInfo = { state: 'ringing', end_reason: null, consent: null, consent_mode: null };
  readonly transcript: TranscriptLine[] = [];
  private pc: RTCPeerConnection | null = null;
  private channel: RTCDataChannel | null = null;
  private sender: RTCRtpSender | null = null;
  private ws: WebSocket | null = null;
  /** The seq each subscription is current to (its last snapshot, delta or `resumed`): where it resumes from. */
  private readonly seen: Record<string, number> = {};
  private muted = false;
  private reconnecting = false;
  private readonly base: string;
  private readonly audio: HTMLAudioElement;
  private iceServers: RTCIceServer[] = [];

  private constructor(
    private readonly stream: MediaStream,
    private readonly opts: StartOptions,
  ) {
    super();
    this.base = (opts.baseUrl ?? location.origin).replace(/\/$/, '');
    this.audio = opts.audio ?? new Audio();
    this.audio.autoplay = true;
  }

  /** Asks for the microphone (unless given), calls, and resolves once the gateway has answered. */
  static async start(opts: StartOptions = {}): Promise<SwitchboardCall> {
    const stream = opts.stream ?? (await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } }));
    const call = new SwitchboardCall(stream, opts);
    try {
      const cfg = await fetch(`${call.base}/webrtc/config`).then((r) => (r.ok ? (r.json() as Promise<{ iceServers: RTCIceServer[] }>) : { iceServers: [] }));
      call.iceServers = cfg.iceServers;
      await call.negotiate(null);
    } catch (err) {
      call.finish(err instanceof Error ? err.message : String(err));
      if (!opts.stream) stream.getTracks().forEach((t) => t.stop());
      throw err;
    }
    call.openTranscript();
    return call;
  }

  get isMuted(): boolean {
    return this.muted;
  }

  setMuted(muted: boolean): void {
    this.muted = muted;
    for (const t of this.stream.getAudioTracks()) t.enabled = !muted;
    this.emit('state');
  }

  /** Sends one key (0-9, *, #, A-D): RFC 4733 in the audio, or the data channel. */
  sendDtmf(digit: string): void {
    if (!/^[0-9*#A-D]$/i.test(digit) || this.state !== 'connected') return;
    const dtmf = this.sender?.dtmf;
    if (dtmf && dtmf.canInsertDTMF) dtmf.insertDTMF(digit, 120, 70);
    else if (this.channel?.readyState === 'open') this.channel.send(JSON.stringify({ type: 'dtmf', digit }));
  }

  /** Ends the call (`DELETE` the session). */
  async hangup(): Promise<void> {
    if (this.state === 'ended') return;
    const session = this.session;
    this.finish('hung up');
    if (session) await fetch(`${this.base}/webrtc/${session}`, { method: 'DELETE', keepalive: true }).catch(() => undefined);
  }

  /** For pages: a best-effort hang-up when the page goes away. */
  hangupOnUnload(): void {
    addEventListener('pagehide', () => {
      if (this.state !== 'ended' && this.session) fetch(`${this.base}/webrtc/${this.session}`, { method: 'DELETE', keepalive: true }).catch(() => undefined);
    });
  }

  private emit(type: 'state' | 'transcript' | 'info', detail?: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  private setState(s: CallState): void {
    if (this.state === s || this.state === 'ended') return;
    this.state = s;
    this.emit('state');
  }

  private finish(reason: string): void {
    if (this.state === 'ended') return;
    this.endReason = reason;
    this.state = 'ended';
    this.pc?.close();
    this.pc = null;
    if (!this.opts.stream) this.stream.getTracks().forEach((t) => t.stop());
    // Keep the transcript socket a moment for the last rows, then let it go.
    setTimeout(() => this.ws?.close(), 3000);
    this.emit('state');
  }

  /** One peer connection: offer (all candidates) → POST → answer. */
  private async negotiate(resume: string | null): Promise<void> {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const track = this.stream.getAudioTracks()[0];
    if (!track) throw new CallError(0, 'no_microphone', 'no microphone track');
    const transceiver = pc.addTransceiver(track, { direction: 'sendrecv', streams: [this.stream] });
    const channel = pc.createDataChannel('switchboard');
    channel.onmessage = (e) => {
      try {
        const msg = JSON.parse(String(e.data)) as { type?: string; reason?: string };
        if (msg.type === 'ended') this.finish(msg.reason ?? 'the call ended');
      } catch {
        /* not for us */
      }
    };
    pc.ontrack = (e) => {
      this.audio.srcObject = e.streams[0] ?? new MediaStream([e.track]);
      void this.audio.play().catch(() => undefined);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, 3000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const query = resume ? `resume=${encodeURIComponent(resume)}` : this.opts.to ? `to=${encodeURIComponent(this.opts.to)}` : '';
    let res: Response;
    try {
      res = await fetch(`${this.base}/webrtc/offer${query ? `?${query}` : ''}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription?.sdp ?? '' });
    } catch (err) {
      pc.close();
      throw new CallError(0, 'network', `the gateway cannot be reached (${(err as Error).message})`);
    }
    if (res.status !== 201) {
      pc.close();
      const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
      throw new CallError(res.status, body?.error?.code ?? 'error', body?.error?.message ?? `the gateway answered ${res.status}`);
    }
    const answer = await res.text();
    this.session = (res.headers.get('Location') ?? '').split('/').pop() ?? this.session;
    this.token = res.headers.get('X-Switchboard-Resume') ?? this.token;
    this.callId = res.headers.get('X-Switchboard-Call') ?? this.callId;
    this.pc?.close();
    this.pc = pc;
    this.channel = channel;
    this.sender = transceiver.sender;
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      if (pc.connectionState === 'connected') this.setState('connected');
      else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') void this.reconnect();
      else if (pc.connectionState === 'disconnected') setTimeout(() => this.pc === pc && pc.connectionState === 'disconnected' && void this.reconnect(), 2000);
    };
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  }

  /** The connection dropped: offer new ones with the resume token until one connects or the call is over. */
  private async reconnect(): Promise<void> {
    if (this.reconnecting || this.state === 'ended') return;
    this.reconnecting = true;
    this.setState('reconnecting');
    const until = Date.now() + (this.opts.resumeForMs ?? 90_000);
    let wait = 500;
    try {
      while ((this.state as CallState) !== 'ended' && Date.now() < until) {
        try {
          await this.negotiate(this.token);
          const pc = this.pc;
          const ok = await new Promise<boolean>((resolve) => {
            const t = setTimeout(() => resolve(false), 10_000);
            const check = (): void => {
              if (pc?.connectionState === 'connected') {
                clearTimeout(t);
                resolve(true);
              }
            };
            pc?.addEventListener('connectionstatechange', check);
            check();
          });
          if (ok) {
            this.setState('connected');
            return;
          }
        } catch (err) {
          if (err instanceof CallError && [401, 404, 410].includes(err.status)) return this.finish(err.message);
        }
        await sleep(wait);
        wait = Math.min(3000, wait * 2);
      }
      this.finish('the connection could not be restored');
    } finally {
      this.reconnecting = false;
    }
  }

  /** This call's row, consent and transcript over WS /v1/subscribe, with the session token as a scoped grant. */
  private openTranscript(): void {
    if (this.state === 'ended' || !this.token) return;
    // The token goes in the first message, never in the URL (URLs end up in logs).
    const ws = new WebSocket(`${this.base.replace(/^http/, 'ws')}/v1/subscribe`);
    this.ws = ws;
    const token = this.token;
    const subscribe = (id: string, since: number | undefined): void => {
      ws.send(JSON.stringify({ type: 'subscribe', id, table: SUBSCRIPTIONS[id], ...(since === undefined ? {} : { since }) }));
    };
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'auth', token }));
      // Reopened (a gateway restart, a network change): each resumes from the last seq it saw, keeping what it shows.
      for (const id of Object.keys(SUBSCRIPTIONS)) subscribe(id, this.seen[id]);
    };
    ws.onmessage = (e) => {
      const msg = JSON.parse(String(e.data)) as SubMessage;
      if (msg.id && typeof msg.seq === 'number') this.seen[msg.id] = msg.seq;
      // A seq that node has not reached (another cluster node catching up): subscribe afresh.
      if (msg.type === 'error' && msg.code === 'invalid_since' && msg.id && msg.id in SUBSCRIPTIONS) {
        delete this.seen[msg.id];
        return subscribe(msg.id, undefined);
      }
      this.onSubscription(msg);
    };
    ws.onclose = () => {
      if (this.ws === ws && this.state !== 'ended') setTimeout(() => this.openTranscript(), 1500);
    };
  }

  private onSubscription(msg: SubMessage): void {
    const rows = msg.type === 'snapshot' ? (msg.rows ?? []) : msg.type === 'delta' && msg.new ? [msg.new] : [];
    for (const row of rows) {
      if (msg.id === 'call') {
        this.info.state = String(row.state);
        this.info.end_reason = (row.end_reason as string | null) ?? null;
        this.emit('info');
        if (row.state === 'ended') this.finish(this.info.end_reason ?? 'the call ended');
      } else if (msg.id === 'consent') {
        this.info.consent = row.outcome as CallInfo['consent'];
        this.info.consent_mode = (row.mode as CallInfo['consent_mode']) ?? null;
        this.emit('info');
      } else if (msg.id === 'transcript') {
        const line: TranscriptLine = { id: String(row.id), channel: row.channel === 'agent' ? 'agent' : 'caller', text: String(row.text), start_ms: Number(row.start_ms) };
        if (this.transcript.some((l) => l.id === line.id)) continue;
        this.transcript.push(line);
        this.transcript.sort((a, b) => a.start_ms - b.start_ms);
        this.emit('transcript', line);
      }
    }
  }
}

/** What the SDK subscribes to (by subscription id); each a scoped grant's table, filtered to this call by the gateway. */
const SUBSCRIPTIONS: Record<string, string> = { call: 'calls', consent: 'consents', transcript: 'transcript_segments' };

interface SubMessage {
  type: string;
  id?: string;
  seq?: number;
  code?: string;
  rows?: Array<Record<string, unknown>>;
  new?: Record<string, unknown> | null;
}
