/**
 * One call's supervisor, on the node that carries the call's media (issue 16): the supervisor's leg (a browser over
 * WebRTC: bridge/supervisor-desk.ts connects it) joins the call's mixer (bridge/legs.ts), and each mode is a
 * who-hears-whom matrix (bridge/supervisor-matrix.ts) written as a `call_matrices` row before it is applied:
 *
 *   attach(leg) ─► listen     the supervisor hears caller and agent; nobody hears the supervisor
 *   setMode     ─► whisper    the supervisor's speech goes to speech-to-text; each final result is the agent's
 *                             `onWhisper(ctx, text)` turn (the caller hears none of it)
 *               ─► takeover   the agent is held (no turns, its audio stopped: TurnManager.takeOver); caller ⇄
 *                             supervisor; what both say is kept (speech-to-text)
 *               ─► listen     (from takeover: the hand-back) the agent's `onResume(ctx, {reason: 'handback',
 *                             transcript})` runs with what was said meanwhile, and its turns open again
 *   detach / the leg closes / the call's media goes ─► two-party again (a hand-back first if taken over); the
 *                             leave row is written by whoever ended it (the API as the user, or here as the media)
 *   settleStale (at attach)   a supervision still active in the rows after a restart is ended: its media is gone
 *
 * The supervision's own rows (join, mode, leave: schema/supervision.ts) are written through bridge/call-facts.ts by
 * the desk (as the user, who needs `supervisor`) or here (the media closed). A call in a warm transfer is not
 * supervised (its legs are the transfer's), and a warm transfer is refused while a supervisor is on the call.
 */
import type { CallLeg } from '../media/call-leg.ts';
import type { AudioFrame } from '../media/frame.ts';
import type { ResumeInfo } from '../agents/types.ts';
import type { SupervisorMode } from '../schema/supervision.ts';
import type { SttSession } from '../speech/stt.ts';
import type { CallContext } from './call-context.ts';
import * as facts from './call-facts.ts';
import { CallLegs } from './legs.ts';
import { storedMatrix } from './legs-matrix.ts';
import { SUPERVISOR_LEG, supervisedMatrix, supervisorReason, unsupervisedMatrix } from './supervisor-matrix.ts';

/** What the supervisor needs of the call's agent turns (bridge/turn-manager.ts). */
export interface SupervisedAgent {
  /** Take-over: no agent turns, the agent's audio stops; each caller utterance's words go to `said`. */
  takeOver(said: (text: string) => void): void;
  /** Hand-back: turns open again and `onResume` runs with the transcript (`take()`: after the words still being kept). */
  handBack(take: () => ResumeInfo['transcript']): void;
  /** A whispered instruction: the agent's `onWhisper` turn. */
  whisper(text: string): void;
}

interface Active {
  id: string;
  leg: CallLeg;
  mode: SupervisorMode;
  stt: SttSession | null;
  said: ResumeInfo['transcript'];
  off: () => void;
}

export class CallSupervision {
  private legs: CallLegs | null = null;
  private on: Active | null = null;

  constructor(
    private readonly ctx: CallContext,
    private readonly agent: SupervisedAgent,
  ) {}

  /** The supervision in progress on this call here, if any. */
  get current(): { id: string; mode: SupervisorMode } | null {
    return this.on ? { id: this.on.id, mode: this.on.mode } : null;
  }

  /** Why a supervisor cannot join now, or null. */
  joinProblem(): { code: string; message: string } | null {
    if (this.ctx.closed || this.ctx.ended) return { code: 'call_ended', message: 'the call has ended' };
    if (this.on) return { code: 'supervisor_busy', message: 'the call is supervised already' };
    const m = storedMatrix(this.ctx.deps.store, this.ctx.ref);
    if (m && m.reason.startsWith('warm:') && !m.reason.startsWith('warm:failed')) return { code: 'transfer_in_progress', message: 'the call is in a warm transfer' };
    return null;
  }

  /** The supervisor's media connected for supervision `id` (joined by `caller`): it joins the mix in the row's mode. */
  async attach(id: string, leg: CallLeg, caller: string): Promise<void> {
    const { ctx } = this;
    const before = ctx.deps.store.read(ctx.ref.tenant).call_supervisions.get(id);
    if (!before || before.state !== 'active') return void leg.close('the supervision has ended'); // left while connecting
    const problem = leg.closedWith ? { code: 'closed', message: 'supervisor media closed' } : this.joinProblem();
    if (problem) {
      leg.close(problem.message);
      await this.recordLeft(id, problem.message);
      return;
    }
    const legs = (this.legs ??= new CallLegs(ctx.leg, ctx.pipeline, ctx.deps.clock, ctx.log));
    legs.addLeg(SUPERVISOR_LEG, leg);
    const off = leg.on('audio', (f) => this.heard(f));
    const on: Active = { id, leg, mode: 'listen', stt: null, said: [], off };
    this.on = on;
    leg.on('closed', (info) => {
      if (this.on !== on) return;
      void this.end(`supervisor media closed: ${info.reason}`, 'media').then(() => this.recordLeft(id, 'supervisor media closed'));
    });
    await this.apply('listen', caller);
    ctx.log.info({ supervision: id }, 'supervisor joined: listening');
    // A mode set while the media was connecting is in the row: apply it now.
    const row = ctx.deps.store.read(ctx.ref.tenant).call_supervisions.get(id);
    if (row && row.state === 'active' && row.mode !== 'listen') await this.setMode(id, row.mode, caller);
    if (row && row.state === 'left') await this.end(row.left_reason ?? 'left', caller); // left while this attach ran
  }

  /** Switches the live supervision `id` to `mode` (its row was written by the desk); unknown id: nothing. */
  async setMode(id: string, mode: SupervisorMode, caller: string): Promise<void> {
    const on = this.on;
    if (!on || on.id !== id || on.mode === mode) return;
    const was = on.mode;
    on.mode = mode;
    if (mode === 'takeover') this.agent.takeOver((text) => on.said.push({ speaker: 'caller', text }));
    if (mode !== 'listen') this.startStt(on);
    await this.apply(mode, caller);
    if (was === 'takeover') this.agent.handBack(() => on.said.splice(0));
    this.ctx.log.info({ supervision: id, from: was, to: mode }, 'supervisor mode changed');
  }

  /** The supervisor left (`id`; its row written by the desk): two-party again, the supervisor's media closed. */
  async detach(id: string, reason: string, caller: string): Promise<void> {
    if (this.on?.id !== id) return;
    await this.end(reason, caller);
  }

  /**
   * At attach: a supervision the rows still call active has no media here (a restart, kill -9 included, or the call's
   * media moved): it is ended (`restart`), and the matrix goes back to two-party, so a supervisor may join again.
   */
  async settleStale(): Promise<void> {
    const { ctx } = this;
    const stale = ctx.deps.store.read(ctx.ref.tenant).call_supervisions.find({ call_id: ctx.ref.callId, state: 'active' });
    if (stale.length === 0) return;
    for (const s of stale) if (s.id !== this.on?.id) await this.recordLeft(s.id, 'restart: the supervisor media is gone');
    const m = storedMatrix(ctx.deps.store, ctx.ref);
    if (!this.on && m && m.reason.startsWith('supervisor:') && m.reason !== supervisorReason('left')) await this.apply('left', 'media');
    ctx.log.info({ supervisions: stale.map((s) => s.id) }, 'supervision ended: its media did not survive the restart');
  }

  /** The caller's media is gone: the supervision ends with it (its leave row written here). */
  close(): void {
    const on = this.on;
    if (on) {
      this.stop(on, 'the call ended');
      void this.recordLeft(on.id, 'the call ended');
    }
    this.legs?.close();
  }

  private async end(reason: string, caller: string): Promise<void> {
    const on = this.on;
    if (!on) return;
    const wasTakeover = on.mode === 'takeover';
    this.stop(on, reason);
    if (!this.ctx.closed) await this.apply('left', caller);
    this.legs?.removeLeg(SUPERVISOR_LEG);
    if (wasTakeover) this.agent.handBack(() => on.said.splice(0));
    this.ctx.log.info({ supervision: on.id, reason }, 'supervisor left');
  }

  /** Forgets the supervision and closes its media (its `closed` event then finds nothing to do). */
  private stop(on: Active, reason: string): void {
    this.on = null;
    on.off();
    on.stt?.close();
    if (!on.leg.closed) on.leg.close(reason);
  }

  private async apply(mode: SupervisorMode | 'left', caller: string): Promise<void> {
    const { ctx } = this;
    const m = mode === 'left' ? unsupervisedMatrix() : supervisedMatrix(mode);
    const r = await facts.matrixSet(ctx.deps.store, ctx.ref, m, { reason: supervisorReason(mode) }, { caller }).catch((err: unknown) => {
      ctx.log.warn({ err }, 'call matrix not recorded');
      return null;
    });
    if (r && !r.ok) ctx.log.warn({ outcome: r, mode }, 'call matrix not recorded');
    if (ctx.closed) return;
    this.legs?.setMatrix(m);
  }

  private async recordLeft(id: string, reason: string): Promise<void> {
    const r = await facts.supervisorLeft(this.ctx.deps.store, this.ctx.ref, id, reason, { caller: 'media' }).catch((err: unknown) => {
      this.ctx.log.warn({ err }, 'supervisor leave not recorded');
      return null;
    });
    if (r && !r.ok && r.code !== 'supervision_ended') this.ctx.log.warn({ outcome: r }, 'supervisor leave not recorded');
  }

  /** The supervisor's speech recogniser (whisper and take-over), started once. */
  private startStt(on: Active): void {
    const stt = this.ctx.deps.stt;
    if (on.stt || !stt) return;
    const rate = on.leg.description.inputRate === 16000 ? 16000 : 8000;
    const session = stt.startSession({ sampleRate: rate, mode: 'transcript' });
    on.stt = session;
    session.on('result', (r) => {
      const text = r.text.trim();
      if (!r.isFinal || text === '' || this.on !== on) return;
      if (on.mode === 'whisper') this.agent.whisper(text);
      else if (on.mode === 'takeover') on.said.push({ speaker: 'supervisor', text });
    });
    session.on('error', (err) => this.ctx.log.warn({ err }, "supervisor's speech-to-text failed"));
  }

  /** A frame of the supervisor's speech: to the recogniser while whispering or in take-over. */
  private heard(f: AudioFrame): void {
    const on = this.on;
    if (on && on.mode !== 'listen') on.stt?.write(f);
  }
}
