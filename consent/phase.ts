/**
 * The consent phase of a live call: wires the provider-neutral consent stage (stage.ts) to the call's media
 * (prompts through TTS + the pipeline, DTMF 1/2, spoken yes/no through a `yes-no` STT session when one is
 * available; what counts as an answer: grammar.ts), and says what the policy wants done after a decision that is
 * not `granted` (`declineAction`). Withdrawal afterwards: withdrawal.ts.
 *
 *   currentDecision ─► decided? ─────────────────────────────► (the call carries on from it)
 *        └ none / pending ─► runConsentPhase ─► consent_started … consent_decided
 *   not granted ─► declineAction(policy): continue unrecorded | transfer (redirect legs) | hang up
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AudioFrame } from '../media/frame.ts';
import type { MediaPipeline } from '../media/pipeline.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import type { SpeechToText } from '../speech/stt.ts';
import type { TextToSpeech } from '../speech/tts.ts';
import { answerForDigit, answerForSpeech } from './grammar.ts';
import { promptFor, runConsentStage, type ConsentAnswer, type ConsentDecision, type PolicyRow } from './stage.ts';

export interface ConsentPhaseDeps {
  store: Store<SwitchboardTables>;
  tts: TextToSpeech;
  /** Speech yes/no; null = DTMF-only consent. */
  stt: SpeechToText | null;
  logger: Logger;
}

export interface ConsentContext {
  tenant: string;
  callId: string;
  answeredAt: number;
  pipeline: MediaPipeline;
  outputRate: 8000 | 16000 | 24000 | 48000;
  /** Rate of the caller's frames (the speech recogniser is opened at it); default 8000. */
  inputRate?: 8000 | 16000 | 24000 | 48000;
  /** True once this media connection is gone. */
  cancelled: () => boolean;
}

/** The policy that governs a call: its number's, else the tenant's newest `default`. */
export function policyFor(store: Store<SwitchboardTables>, tenant: string, callId: string): PolicyRow | undefined {
  const read = store.read(tenant);
  const call = read.calls.get(callId);
  const number = call?.number_id ? read.numbers.get(call.number_id) : undefined;
  if (number?.consent_policy_id) {
    const p = read.consent_policies.get(number.consent_policy_id);
    if (p) return p;
  }
  return read.consent_policies.find({ name: 'default' }, { orderBy: 'version', desc: true, limit: 1 })[0];
}

/** The call's current consent decision, or null if it has none or it is pending. */
export function currentDecision(store: Store<SwitchboardTables>, tenant: string, callId: string): { outcome: string; pendingId: string | null } | null {
  const read = store.read(tenant);
  const call = read.calls.get(callId);
  const consent = call?.consent_id ? read.consents.get(call.consent_id) : undefined;
  if (!consent) return null;
  if (consent.outcome === 'pending') return { outcome: 'pending', pendingId: consent.id };
  return { outcome: consent.outcome, pendingId: null };
}

export async function runConsentPhase(deps: ConsentPhaseDeps, c: ConsentContext, pendingId: string | null): Promise<ConsentDecision> {
  const policy = policyFor(deps.store, c.tenant, c.callId);
  if (!policy) throw new Error(`tenant ${c.tenant} has no consent policy`);
  const listeners = new Set<(a: ConsentAnswer) => void>();
  // Type-ahead: an answer given before the stage listens (a caller pressing 1 as the disclosure starts, while its
  // prompt renders or `consent_started` is being made durable) is kept and handed to the first listener.
  let early: ConsentAnswer | null = null;
  const emit = (a: ConsentAnswer): void => {
    if (listeners.size === 0) early ??= a;
    else listeners.forEach((l) => l(a));
  };
  const clockMs = (): number => Date.now() - c.answeredAt;
  const offDtmf = c.pipeline.on('dtmf', ({ digit, source }) => {
    const a = answerForDigit(digit, source, clockMs());
    if (a) emit(a);
  });
  const stt = policy.mode === 'notify' ? null : deps.stt;
  // (the gateway warned once at start that no recogniser runs)
  if (!stt && policy.mode !== 'notify') deps.logger.debug({ call: c.callId }, 'consent by DTMF only');
  const session = stt?.startSession({ sampleRate: c.inputRate === 16000 ? 16000 : 8000, mode: 'yes-no' }) ?? null;
  const startedAtMs = clockMs();
  let removeTap: (() => void) | null = null;
  if (session) {
    removeTap = c.pipeline.addTap({
      name: 'consent-stt',
      process: (frame: AudioFrame, channel) => {
        if (channel === 'caller') session.write(frame);
      },
    });
    session.on('result', (r) => {
      const a = answerForSpeech(r, startedAtMs);
      if (a) emit(a);
    });
    session.on('error', (err) => deps.logger.warn({ err: err.message, call: c.callId }, 'consent speech recognition failed: DTMF still works'));
  }
  // Render the prompt first: its audio hash goes on the consent row (what this caller heard).
  const rendered = await deps.tts.synthesize(promptFor(policy), c.outputRate);
  const disclosureSha256 = createHash('sha256').update(Buffer.from(rendered.buffer, rendered.byteOffset, rendered.byteLength)).digest('hex');
  try {
    return await runConsentStage({
      store: deps.store,
      tenant: c.tenant,
      callId: c.callId,
      policy,
      pendingConsentId: pendingId,
      disclosureSha256,
      io: {
        say: async (text) => {
          const audio = await deps.tts.synthesize(text, c.outputRate);
          const r = await c.pipeline.play(audio);
          return { heardMs: r.heardMs, interrupted: r.interrupted };
        },
        interrupt: () => void c.pipeline.interrupt(),
        onAnswer: (l) => {
          listeners.add(l);
          if (early) {
            const a = early;
            early = null;
            queueMicrotask(() => listeners.has(l) && l(a));
          }
          return () => listeners.delete(l);
        },
        // The answer window does not close on a caller who is mid-word, nor before the recogniser has had
        // RECOGNITION_GRACE_MS after they stopped — but never beyond MAX_OVERRUN_MS past the policy's timeout.
        sleep: (ms) => waitQuiet(c.pipeline, ms, c.cancelled),
        cancelled: c.cancelled,
      },
    });
  } finally {
    offDtmf();
    removeTap?.();
    session?.close();
  }
}

const RECOGNITION_GRACE_MS = 1500;
/**
 * How far past the policy's timeout an answer window may stretch for a caller still talking (a "yes" begun as the
 * window closes, plus its recognition). A hard bound: on a noisy line, a looping clip or a caller who never stops,
 * the timeout still decides (no_response, or granted for opt-out) as the policy says; without it a noisy call stayed
 * pending for its whole length.
 */
export const MAX_OVERRUN_MS = 4000;

/** The caller's side of the line as the answer window sees it (the media pipeline's VAD). */
export interface CallerActivity {
  readonly callerSpeaking: boolean;
  /** performance.now() of the caller's last speech end (0 = never). */
  readonly lastSpeechEndAt: number;
}

/** Waits `ms`, stretched while the caller talks or was just heard, up to `ms + MAX_OVERRUN_MS` whatever the audio does. */
export async function waitQuiet(caller: CallerActivity, ms: number, cancelled: () => boolean): Promise<void> {
  const start = performance.now();
  const hardDeadline = start + ms + MAX_OVERRUN_MS;
  let deadline = start + ms;
  for (;;) {
    if (cancelled()) return;
    const now = performance.now();
    if (now >= hardDeadline) return;
    if (deadline - now <= 0) {
      if (caller.callerSpeaking) deadline = now + 200;
      else if (now - caller.lastSpeechEndAt < RECOGNITION_GRACE_MS) deadline = caller.lastSpeechEndAt + RECOGNITION_GRACE_MS;
      else return;
      deadline = Math.min(deadline, hardDeadline);
      continue;
    }
    await new Promise((r) => setTimeout(r, Math.min(deadline - now, 200)));
  }
}

/** What the policy wants done after a decision that is not `granted` (a `withdrawn` one keeps the call going). */
export type DeclineAction =
  | { kind: 'continue' }
  | { kind: 'transfer'; target: string; prompt: string }
  | { kind: 'hangup'; reason: string; prompt: string };

/**
 * The policy's `on_decline` for a call whose consent is `outcome` (not granted): `continue-unrecorded` (or no
 * policy) lets the agent run without recording; `transfer` needs a target and a call that can be transferred (its
 * leg redirects or REFERs, or the gateway dials and bridges), else the call ends with a reason that says why;
 * `hangup` ends it.
 */
export function declineAction(policy: PolicyRow | undefined, outcome: string, canTransfer: boolean): DeclineAction {
  if (outcome === 'withdrawn') return { kind: 'continue' };
  if (policy?.on_decline === 'transfer' && policy.transfer_target && canTransfer) {
    return { kind: 'transfer', target: policy.transfer_target, prompt: 'Please hold while we connect you.' };
  }
  if (policy?.on_decline === 'hangup' || policy?.on_decline === 'transfer') {
    const reason = policy.on_decline === 'hangup' ? `consent ${outcome}` : `consent ${outcome}: transfer to ${String(policy.transfer_target)} is not possible on this call`;
    return { kind: 'hangup', reason, prompt: 'Thank you for calling. Goodbye.' };
  }
  return { kind: 'continue' };
}
