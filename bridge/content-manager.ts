/**
 * The content of one call — what consent protects: the recording and the transcripts.
 *
 *   start (consent granted) ─► recording.begin + its tap ─► transcriber (a `transcript` STT session with the
 *        │                     spoken commands' phrases) + its tap ─► results:
 *        │                        a spoken command (withdrawal) ─► handed to the commands, not transcribed
 *        │                        words ─► transcript_appended (caller) and CallerWords (the agent's turn input)
 *        │                        every result, interim too ─► `onText` (in memory: stop words, an agent's interim
 *        │                          text); never stored, nothing inside a PCI pause
 *   agentSaid ─► transcript_appended (agent)
 *   pause (consent withdrawn) ─► recording paused, transcriber closed, no more segments
 *   PCI pause (bridge/pci-pause.ts: ctx.secure, the API, the console) ─► recorder paused; results inside a paused
 *        span reach the agent's words only (never a segment); the agent's speech there is not transcribed either
 *   redaction (bridge/redaction.ts, per the call's consent policy) ─► every segment redacted before it is stored,
 *        counts in `transcript_redacted`; the agent's turns get the redacted words when the policy says so
 *   close (media gone) ─► transcriber closed ─► finish (after the loss is recorded) ─► recording flushed / finalized
 *
 * Segments are written only while content is allowed (`start` … `revoke`); the store refuses them otherwise too.
 * Times are on the recording clock (ms since answer). Owns: allowed, the recording handle, the transcriber, the
 * caller's words and the call's PCI pause.
 */
import type { SttResult, SttSession } from '../speech/stt.ts';
import type { CallContext } from './call-context.ts';
import { CallerWords } from './caller-words.ts';
import type { RecordingHandle } from './recording-port.ts';
import { transcript_appended, transcript_redacted } from '../schema/reducers.ts';
import { allKinds, redact } from '../speech/redact.ts';
import { PciPause } from './pci-pause.ts';
import { redactionPolicy } from './redaction.ts';
import { spotPhrase } from '../speech/vocabulary.ts';

/** Commands the caller may say mid-call (the consent manager's withdrawal phrases). */
export interface SpokenCommands {
  readonly phrases: readonly string[];
  /** A final result: true if it was a command (handled; not transcribed). `offsetMs` puts it on the recording clock. */
  heard(result: SttResult, offsetMs: number): boolean;
}

export class ContentManager {
  private allowed = false;
  private recording: RecordingHandle | null = null;
  private transcriber: SttSession | null = null;
  /** What the caller said: each utterance turn gets the words of its own utterance (bridge/caller-words.ts). */
  private readonly heard = new CallerWords();
  /** Words heard during a PCI pause are waiting in `heard`: an agent turn (not a gather) gets them masked. */
  private secureWords = false;
  /** The PCI pause: the recorder, and what of the transcript is kept. */
  readonly pci: PciPause;
  /**
   * Set by the session: each result's text as it comes, interim or final, with its times on the recording clock —
   * in memory only (bridge/stop-words.ts, an agent's interim text). Not called for spoken commands or inside a PCI pause.
   */
  onText: ((said: { text: string; final: boolean; startMs: number; endMs: number }) => void) | null = null;

  constructor(
    private readonly ctx: CallContext,
    /** Who handles the caller's spoken commands (the consent manager, created after this one). */
    private readonly commands: () => SpokenCommands,
  ) {
    this.pci = new PciPause(ctx, { recording: () => this.recording, allowed: () => this.allowed });
  }

  /** Consent granted: record and transcribe from now on. */
  async start(): Promise<void> {
    this.allowed = true;
    const { ctx } = this;
    const ref = { ...ctx.ref, answeredAt: ctx.answeredAt, sampleRate: ctx.leg.description.inputRate };
    const recording = (await ctx.deps.recordings?.begin(ref)) ?? null;
    if (ctx.closed) {
      // The media closed while the recording was being set up: close what was opened, start nothing more
      // (a transcriber started now would never be closed, and its recogniser process would outlive the call).
      if (recording) ctx.work.push(() => recording.finish(), (err: unknown) => ctx.log.error({ err }, 'recording not finished'));
      return;
    }
    this.recording = recording;
    if (this.recording) {
      this.pci.recordingStarted(this.recording);
      ctx.pipeline.addTap(this.recording.tap);
    }
    this.transcribe();
  }

  /** Consent withdrawn: stops content; false if it was not allowed (nothing to withdraw). */
  revoke(): boolean {
    if (!this.allowed) return false;
    this.allowed = false;
    return true;
  }

  /** After a withdrawal is recorded: the recording pauses, transcription stops. */
  async pause(reason: string): Promise<void> {
    await this.recording?.pause(reason);
    this.transcriber?.close();
    this.heard.detach();
  }

  /** The VAD heard the caller stop (marks the end of the utterance whose words the next turn takes). */
  utteranceEnded(): void {
    this.heard.utteranceEnded();
  }

  /** The caller's words heard so far and not yet taken, in memory only: how the utterance ends (bridge/end-of-turn.ts). */
  peekWords(): string | null {
    return this.heard.peek();
  }

  /**
   * The words of the caller's last utterance(s), once the recogniser has reported them (null: none). `raw` (a gather,
   * e.g. inside ctx.secure) gets what was said; an agent turn gets what the redaction policy lets it see, and words
   * heard during a PCI pause masked of every kind.
   */
  async takeWords(raw = false): Promise<string | null> {
    const words = await this.heard.take();
    const secure = this.secureWords;
    this.secureWords = false;
    if (raw || words === null) return words;
    if (secure) return redact(words, allKinds()).text;
    return this.agentView(words);
  }

  /** What the redaction policy lets the agent see of `words`. */
  agentView(words: string): string {
    const policy = redactionPolicy(this.ctx.deps.store, this.ctx.ref);
    return policy?.agentSees === 'redacted' ? redact(words, policy.kinds).text : words;
  }

  /** The agent said `text` from `startMs` (recording clock), heard for `heardMs`. */
  agentSaid(startMs: number, heardMs: number, text: string): void {
    if (this.pci.active || this.pci.covers(startMs, startMs + heardMs)) return;
    this.append('agent', startMs, startMs + heardMs, text, null, this.ctx.deps.tts.name);
  }

  /** The media is gone: stop transcribing now (the recording is finished by `finish`). */
  close(): void {
    this.transcriber?.close();
    this.heard.detach();
    this.pci.close();
  }

  /**
   * Flushes this connection's recording segment. The recording is finalized by the recording service once the
   * call row is `ended` (one route: its watch on the calls table), not from here.
   */
  finish(): void {
    const rec = this.recording;
    if (!rec) return;
    this.ctx.work.push(() => rec.finish(), (err: unknown) => this.ctx.log.error({ err }, 'recording not finished'));
  }

  private transcribe(): void {
    const { ctx } = this;
    const stt = ctx.deps.stt;
    if (!stt) return;
    const offset = ctx.clockMs();
    // The recogniser takes the caller's frames at the leg's rate (wideband legs stay wideband).
    const session = stt.startSession({ sampleRate: ctx.leg.description.inputRate === 16000 ? 16000 : 8000, mode: 'transcript', phrases: this.commands().phrases });
    this.transcriber = session;
    this.heard.attach();
    ctx.pipeline.addTap({
      name: 'transcriber',
      process: (frame, channel) => {
        if (channel !== 'caller') return;
        session.write(frame);
        this.heard.audio((frame.samples.length * 1000) / frame.sampleRate);
      },
    });
    session.on('result', (r) => {
      this.tell(r, offset);
      if (!r.isFinal) return;
      // A spoken command (withdrawal) is not transcribed (content stops there), nor handed to the agent — it still
      // tells a turn waiting on the recogniser how far it got.
      if (this.commands().heard(r, offset)) return void this.heard.add({ ...r, text: '' });
      // Empty finals too: they tell the turn waiting for this utterance's words that the recogniser is past it.
      this.heard.add(r);
      if (r.text.trim() === '') return;
      // Said during a PCI pause: the agent has the words in memory, nothing else does.
      if (this.pci.active || this.pci.covers(offset + r.startMs, offset + r.endMs)) return void (this.secureWords = true);
      this.append('caller', offset + r.startMs, offset + r.endMs, r.text, r.confidence, stt.name);
    });
    session.on('error', (err) => ctx.log.warn({ err: err.message }, 'caller transcription failed'));
  }

  /** Hands a result's text to `onText` (interim ones go nowhere else). */
  private tell(r: SttResult, offset: number): void {
    const text = r.text.trim();
    // A spoken command (withdrawal) is the consent manager's, interim or final.
    if (!this.onText || text === '' || r.phrase !== undefined || spotPhrase(text, this.commands().phrases) !== null) return;
    if (this.pci.active || this.pci.covers(offset + r.startMs, offset + r.endMs)) return;
    try {
      this.onText({ text, final: r.isFinal, startMs: offset + r.startMs, endMs: offset + r.endMs });
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, 'caller text listener failed');
    }
  }

  private append(channel: 'caller' | 'agent', startMs: number, endMs: number, said: string, confidence: number | null, provider: string): void {
    if (!this.allowed) return;
    const { store } = this.ctx.deps;
    const policy = redactionPolicy(store, this.ctx.ref);
    const { text, counts } = policy ? redact(said, policy.kinds) : { text: said, counts: {} };
    const start = Math.round(startMs);
    void store
      .submit(transcript_appended, { call_id: this.ctx.ref.callId, channel, start_ms: start, end_ms: Math.round(Math.max(startMs, endMs)), text, confidence, provider }, this.ctx.who())
      .then(async (r) => {
        if (!r.outcome.ok) return void this.ctx.log.warn({ outcome: r.outcome }, 'transcript segment refused');
        if (Object.keys(counts).length === 0) return;
        const segmentId = (r.outcome.result as { segment_id: string }).segment_id;
        await store.submit(transcript_redacted, { call_id: this.ctx.ref.callId, segment_id: segmentId, channel, start_ms: start, counts }, this.ctx.who());
      })
      .catch(() => undefined);
  }
}
