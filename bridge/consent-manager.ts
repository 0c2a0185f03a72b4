/**
 * Consent on one call's media: runs the consent phase (consent/phase.ts) unless the call already has a decision,
 * acts on the decision, and afterwards watches for withdrawal (consent/withdrawal.ts).
 *
 *   run ─► decided already? ──────────────────────────────┐
 *        └ none / pending ─► consent phase ─► decision ───┤
 *   granted ─► content.start ─► true (turns may start)    │
 *   declined / no_response ─► policy's declineAction: continue unrecorded (true) | transfer | hang up (false)
 *        (transfer: the leg's redirect or REFER, else dialled and bridged by the gateway; a failed one hangs up)
 *   withdrawn (a resumed call) ─► true, unrecorded
 *
 *   *9, or a transcript result saying a withdrawal phrase ─► withdraw: consent_withdrawn ─► content paused
 *                                                            ─► "Recording has been stopped."
 *
 * Owns: the keypad watcher's subscription. What it needs from the rest of the call (transfer, hangup) comes in as
 * a `ConsentHost`, so it never holds another manager's state.
 */
import { WITHDRAWAL_PHRASES } from '../consent/grammar.ts';
import { currentDecision, declineAction, policyFor, runConsentPhase } from '../consent/phase.ts';
import { spokenWithdrawal, watchWithdrawal, type WithdrawalMethod } from '../consent/withdrawal.ts';
import type { SttResult } from '../speech/stt.ts';
import type { CallContext } from './call-context.ts';
import type { ContentManager, SpokenCommands } from './content-manager.ts';
import { consent_withdrawn } from '../schema/reducers.ts';

export interface ConsentHost {
  /** Whether `transfer` can hand this call over (redirect, REFER, or dialled and bridged by the gateway). */
  canTransfer(): boolean;
  /** Hands the call to `target` (a policy that transfers declining callers); throws when it fails. */
  transfer(target: string): Promise<void>;
  hangup(reason: string): Promise<void>;
}

export class ConsentManager implements SpokenCommands {
  /** The phrases the call's transcriber listens for on consent's behalf. */
  readonly phrases = WITHDRAWAL_PHRASES;
  private offKeypad: (() => void) | null = null;

  constructor(
    private readonly ctx: CallContext,
    private readonly content: ContentManager,
    private readonly host: ConsentHost,
  ) {}

  /** Starts listening for the keypad withdrawal (`*9`). */
  watch(): void {
    this.offKeypad ??= watchWithdrawal(this.ctx.pipeline, (evidence) => void this.withdraw('dtmf', evidence));
  }

  /** A final transcript result: a spoken withdrawal is acted on (true), anything else is content (false). */
  heard(result: SttResult, offsetMs: number): boolean {
    const evidence = spokenWithdrawal(result, offsetMs);
    if (!evidence) return false;
    void this.withdraw('speech', evidence);
    return true;
  }

  /**
   * The consent phase (unless decided), then content or the policy's decline action. True when the agent may
   * take turns; false when the call was handed on, ended, or its media closed.
   */
  async run(): Promise<boolean> {
    const { ctx } = this;
    const { store } = ctx.deps;
    let decision = currentDecision(store, ctx.ref.tenant, ctx.ref.callId);
    if (!decision || decision.outcome === 'pending') {
      const d = await runConsentPhase(
        { store, tts: ctx.deps.tts, stt: ctx.deps.stt ?? null, logger: ctx.log },
        {
          tenant: ctx.ref.tenant,
          callId: ctx.ref.callId,
          answeredAt: ctx.answeredAt,
          pipeline: ctx.pipeline,
          outputRate: ctx.leg.description.outputRate,
          inputRate: ctx.leg.description.inputRate,
          cancelled: () => ctx.closed,
        },
        decision?.pendingId ?? null,
      );
      ctx.log.info({ outcome: d.outcome, method: d.method }, 'consent decided');
      decision = { outcome: d.outcome, pendingId: null };
    }
    if (ctx.closed) return false;
    if (decision.outcome === 'granted') {
      await this.content.start();
    } else if (decision.outcome !== 'withdrawn') {
      const action = declineAction(policyFor(store, ctx.ref.tenant, ctx.ref.callId), decision.outcome, this.host.canTransfer());
      if (action.kind === 'transfer') {
        await ctx.playText(action.prompt);
        try {
          await this.host.transfer(action.target);
        } catch (err) {
          ctx.log.warn({ err: (err as Error).message, target: action.target }, 'consent declined: the transfer failed, the call ends');
          if (!ctx.closed) await this.host.hangup(`consent ${decision.outcome}: transfer to ${action.target} failed`);
        }
        return false;
      }
      if (action.kind === 'hangup') {
        await ctx.playText(action.prompt);
        await this.host.hangup(action.reason);
        return false;
      }
    }
    return true;
  }

  /** Withdraws a granted consent: recorded first, then the recording pauses and transcription stops. */
  async withdraw(method: WithdrawalMethod, evidence: Record<string, unknown>): Promise<void> {
    const { ctx } = this;
    if (!this.content.revoke()) return;
    const r = await ctx.deps.store.submit(consent_withdrawn, { call_id: ctx.ref.callId, method, evidence: { ...evidence, at_ms: evidence.at_ms ?? ctx.clockMs() } }, ctx.who());
    if (!r.outcome.ok) return void ctx.log.warn({ outcome: r.outcome }, 'withdrawal refused');
    await this.content.pause('consent withdrawn');
    ctx.log.info({ method }, 'consent withdrawn: recording and transcription stopped');
    await ctx.playText('Recording has been stopped.');
  }

  /** The media is gone: stop watching the keypad. */
  close(): void {
    this.offKeypad?.();
    this.offKeypad = null;
  }
}
