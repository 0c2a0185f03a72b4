/**
 * The PCI pause of one call's content (issue 17): while it is on, the caller's keys and speech reach the agent in
 * memory only — never the recording, the transcript, the log, logs or metrics.
 *
 *   agent: ctx.secure(fn) / ctx.pauseRecording('pci') ─┐                      ┌─ recorder paused at once (silence or
 *   user:  POST /v1/calls/:id/recording/pause, console ─┴─► pause(reason) ─────┤   skip, per policy), before the row
 *           (the API writes the row; this session sees it │                    ├─ spans: [start_ms, …) on the
 *            through its subscription and applies it)     │                    │   recording clock (transcript results
 *                                                         ▼                    │   inside a span are not stored)
 *                                          recording_pause_started (who, why)  └─ `active`: say rows masked, words
 *   ctx.resumeRecording() / end of secure / POST …/resume ─► resume() ─► recorder resumed (only if content is still
 *                                          allowed: a withdrawal's pause outlives it) ─► recording_pause_ended
 *   media closed while paused on an ended call ─► recording_pause_ended (system), so the row says how long
 *
 * A session that attaches to a call with an open pause (a restart, a failover) starts paused (`restore`). Owns: the
 * spans and the subscription.
 */
import type { CallContext } from './call-context.ts';
import type { RecordingHandle } from './recording-port.ts';
import { recording_pause_ended, recording_pause_started } from '../schema/reducers.ts';

export interface PciMedia {
  /** The call's recording now (null before consent, or unrecorded). */
  recording(): RecordingHandle | null;
  /** Content (recording, transcripts) is allowed now: consent granted and not withdrawn. */
  allowed(): boolean;
}

export class PciPause {
  private readonly spans: Array<{ start: number; end: number | null }> = [];
  private unsubscribe: (() => void) | null = null;
  /** The open pause's row id (once written or seen), and the rows already ended (a late delta never re-pauses). */
  private openId: string | null = null;
  private readonly endedIds = new Set<string>();

  constructor(
    private readonly ctx: CallContext,
    private readonly media: PciMedia,
  ) {}

  /** True while paused. */
  get active(): boolean {
    return this.spans.at(-1)?.end === null;
  }

  /** True if [startMs, endMs] (recording clock) touches a paused span: content heard there is not kept. */
  covers(startMs: number, endMs: number): boolean {
    return this.spans.some((s) => startMs <= (s.end ?? Infinity) && endMs >= s.start);
  }

  /** Starts applying pauses made elsewhere (the API, another node) to this session; an open one applies now. */
  watch(): void {
    const { store } = this.ctx.deps;
    const sub = store.subscribe('recording_pauses', { call_id: this.ctx.ref.callId }, this.ctx.ref.tenant, (d) => {
      const row = d.new as { id: string; resumed_at: number | null; reason: string } | null;
      if (row) this.seen(row);
    });
    this.unsubscribe = sub.unsubscribe;
    for (const row of sub.snapshot.rows as Array<{ id: string; resumed_at: number | null; reason: string }>) this.seen(row);
  }

  /** A new recording began (consent granted, a resume): it starts paused if a pause is on. */
  recordingStarted(rec: RecordingHandle): void {
    if (this.active) rec.pauseMedia?.('pci');
  }

  /** Pauses now (media first), then writes the row as `who`. Resolves the pause id. */
  async pause(reason: string, who: { tenant: string; caller: string }): Promise<string> {
    this.applyPause(reason);
    const r = await this.ctx.deps.store.submit(recording_pause_started, { call_id: this.ctx.ref.callId, reason, start_ms: this.spans.at(-1)!.start }, who);
    if (!r.outcome.ok) {
      this.applyResume();
      throw new Error(`pause refused: ${r.outcome.error.code}: ${r.outcome.error.message}`);
    }
    const id = (r.outcome.result as { pause_id: string }).pause_id;
    if (this.active && !this.endedIds.has(id)) this.openId = id;
    return id;
  }

  /** Resumes (the recorder, if content is still allowed), then closes the row as `who`. */
  async resume(who: { tenant: string; caller: string }): Promise<void> {
    if (!this.active) return;
    if (this.openId) this.endedIds.add(this.openId);
    const endMs = this.applyResume();
    const r = await this.ctx.deps.store.submit(recording_pause_ended, { call_id: this.ctx.ref.callId, end_ms: endMs }, who);
    if (!r.outcome.ok && r.outcome.error.code !== 'not_paused') this.ctx.log.warn({ code: r.outcome.error.code }, 'recording pause end not recorded');
  }

  /** The media is gone: stop watching; a pause still on when the call is over is closed (it lasted until then). */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (!this.active || !this.ctx.ended) return;
    const endMs = this.applyResume();
    void this.ctx.deps.store
      .submit(recording_pause_ended, { call_id: this.ctx.ref.callId, end_ms: endMs }, { tenant: this.ctx.ref.tenant, caller: 'system:call-ended' })
      .catch(() => undefined);
  }

  private seen(row: { id: string; resumed_at: number | null; reason: string }): void {
    if (row.resumed_at !== null) {
      this.endedIds.add(row.id);
      if (this.openId === row.id) this.applyResume();
      return;
    }
    if (this.endedIds.has(row.id)) return;
    this.openId = row.id;
    this.applyPause(row.reason);
  }

  private applyPause(reason: string): void {
    if (this.active) return;
    this.spans.push({ start: Math.round(this.ctx.clockMs()), end: null });
    this.media.recording()?.pauseMedia?.(reason);
    this.ctx.log.info({ reason }, 'recording and transcription paused');
  }

  private applyResume(): number {
    const open = this.spans.at(-1);
    const end = Math.round(this.ctx.clockMs());
    if (!open || open.end !== null) return end;
    this.openId = null;
    open.end = Math.max(open.start, end);
    if (this.media.allowed()) this.media.recording()?.resumeMedia?.();
    this.ctx.log.info({ pausedMs: open.end - open.start }, 'recording and transcription resumed');
    return open.end;
  }
}
