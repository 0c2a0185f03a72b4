/**
 * Answering-machine detection on an answered outbound call that asked for it (`POST /v1/calls` `amd`, an
 * `amd_requests` row): runs first, before consent and the agent, on the answered party's audio (media/amd.ts).
 * Audio never leaves memory: the detector keeps counters only.
 *
 *   attach (a new call with an amd request and no `answered_by` row yet)
 *     ─► listen: the caller's frames, re-cut into 20 ms, into the detector (until it decides, timeoutMs + 2 s of
 *        wall time at most, or the media closes)
 *     ─► call_answered_by {by, source: media, evidence: the detector's + decided_ms/ready_ms}  (call-facts.ts)
 *     ─► treated as: by, or for `unknown` the request's `on_unknown`
 *          human   ─► consent phase ─► onAnswered ─► onStart ─► turns (as any call)
 *          machine ─► consent recorded as no_response, implied (consent/machine.ts: nothing recorded)
 *                     ─► onAnswered — after the beep: its say/play is the voicemail ─► hang up `amd:machine`
 *                        unless the agent hung up itself (no onAnswered hook: hang up at once)
 *          hangup  ─► call ended `amd:unknown`
 *
 * A call resumed after a restart skips the stage; one whose provider already said who answered (its own AMD) takes
 * that decision without listening, and if the provider decides while the detector listens, the provider's row
 * (the first decision: schema/answered-by.ts) is the one acted on.
 */
import { AmdDetector, type AmdDecision, type AnsweredBy } from '../media/amd.ts';
import type { AudioFrame } from '../media/frame.ts';
import { guarded } from '../media/guard.ts';
import type { AnsweredInfo, Json } from '../agents/types.ts';
import type { AmdOnUnknown } from '../schema/amd-requests.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import type { CallContext, CallRef } from './call-context.ts';
import * as facts from './call-facts.ts';

/** What the stage needs from the call's session. */
export interface AmdHost {
  readonly ctx: CallContext;
  /** The consent phase (true: the agent may take turns). */
  runConsent(): Promise<boolean>;
  recordMachineConsent(evidence: Record<string, unknown>): Promise<void>;
  openTurns(): void;
  enqueueAnswered(info: AnsweredInfo): void;
  enqueueStart(): void;
  hangup(reason: string): Promise<void>;
}

export interface AmdPending {
  onUnknown: AmdOnUnknown;
  timeoutMs: number;
  /** The provider's decision already made (its own AMD): used as it is, without listening. */
  decided: { by: AnsweredBy; evidence: Record<string, unknown> } | null;
}

/** The call's request, when it asked for detection and the media detector has not decided yet; else null. */
export function pendingAmd(store: Store<SwitchboardTables>, ref: CallRef): AmdPending | null {
  const read = store.read(ref.tenant);
  const req = read.amd_requests.get(ref.callId);
  const row = read.answered_by.get(ref.callId);
  if (!req || row?.source === 'media') return null;
  return { onUnknown: req.on_unknown, timeoutMs: req.timeout_ms, decided: row && row.by !== 'unknown' ? { by: row.by, evidence: row.evidence } : null };
}

/** Listens (or takes the provider's decision) and records it; the decision that stands (the row's). */
async function decide(ctx: CallContext, req: AmdPending): Promise<{ by: AnsweredBy; evidence: Record<string, unknown> } | null> {
  if (req.decided) return req.decided;
  const d = await listen(ctx, req.timeoutMs);
  if (ctx.closed) return null;
  const evidence = { ...d.evidence, decided_ms: d.decidedMs, ready_ms: d.readyMs, ...(d.by === 'unknown' ? { on_unknown: req.onUnknown } : {}) };
  const r = await facts.answeredBy(ctx.deps.store, ctx.ref, { by: d.by, source: 'media', evidence }, { caller: 'media:amd', id: `amd:${ctx.ref.callId}` });
  ctx.log.info({ by: d.by, decidedMs: d.decidedMs, readyMs: d.readyMs, reason: d.evidence.reason, beep: d.evidence.beep, outcome: r.ok ? 'ok' : r.code }, 'answering-machine detection');
  // The provider's AMD may have decided meanwhile (`already_decided`): its row stands.
  const row = ctx.deps.store.read(ctx.ref.tenant).answered_by.get(ctx.ref.callId);
  return row && !(row.source === 'media' && row.by === d.by) ? { by: row.by, evidence: row.evidence } : { by: d.by, evidence };
}

/** Feeds the caller's frames to a detector until it decides (or the wall-clock bound, or the media closes). */
export function listen(ctx: CallContext, timeoutMs: number): Promise<AmdDecision> {
  const detector = new AmdDetector({ timeoutMs, initialSilenceMs: Math.min(4000, timeoutMs) });
  return new Promise((resolve) => {
    let pending: Int16Array = new Int16Array(0);
    let done = false;
    const finish = (d: AmdDecision): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poll);
      remove();
      resolve(d);
    };
    const remove = ctx.pipeline.addTap({
      name: 'amd',
      process: (frame: AudioFrame, channel) => {
        if (channel !== 'caller' || done) return;
        const n = frame.sampleRate / 50;
        const joined = new Int16Array(pending.length + frame.samples.length);
        joined.set(pending);
        joined.set(frame.samples, pending.length);
        let i = 0;
        for (; i + n <= joined.length && !done; i += n) {
          const d = detector.push(joined.subarray(i, i + n), frame.sampleRate);
          if (d) finish(d);
        }
        pending = joined.slice(i);
      },
    });
    // No media at all (a silent far end sends nothing): undecided once the listening time is over.
    const nothing = (reason: string): AmdDecision => ({
      by: 'unknown',
      decidedMs: detector.elapsedMs,
      readyMs: detector.elapsedMs,
      evidence: { speechMs: 0, greetingMs: 0, longestSilenceMs: 0, speechStartMs: null, beep: null, reason },
    });
    const failed = (err: unknown): void => ctx.log.error({ err }, 'amd timer failed');
    const timer = setTimeout(guarded(() => finish(nothing('no-media')), failed), timeoutMs + 2000);
    const poll = setInterval(
      guarded(() => {
        if (ctx.closed) finish(nothing('media-closed'));
      }, failed),
      200,
    );
    timer.unref();
    poll.unref();
  });
}

/** The whole stage, on the call's work queue: decide, then consent and the agent's hooks. */
export async function runAmdStage(host: AmdHost, req: AmdPending): Promise<void> {
  const { ctx } = host;
  const d = await decide(ctx, req);
  if (!d || ctx.closed) return;
  const treated = d.by !== 'unknown' ? d.by : req.onUnknown;
  const evidence = d.evidence;
  if (treated === 'hangup') return host.hangup('amd:unknown');
  const info: AnsweredInfo = { by: d.by, treatedAs: treated, evidence: evidence as Record<string, Json> };
  if (treated === 'machine') {
    await host.recordMachineConsent({ amd_reason: typeof evidence.reason === 'string' ? evidence.reason : null });
    if (!ctx.agent.has('onAnswered')) return host.hangup('amd:machine');
    host.enqueueAnswered(info);
    // The voicemail has been left (or the agent chose not to): a machine gets no conversation.
    ctx.work.push(
      async () => {
        if (!ctx.ended && !ctx.closed) await host.hangup('amd:machine');
      },
      (err: unknown) => ctx.log.warn({ err }, 'hang-up after the voicemail failed'),
    );
    return;
  }
  if (!(await host.runConsent())) return;
  host.openTurns();
  host.enqueueAnswered(info);
  host.enqueueStart();
}
