/**
 * The consent stage: runs before the agent sees the call, on any ingress.
 *
 *   consent_started ─► play disclosure (+ prompt) ─► listen: DTMF 1/2, speech yes/no
 *        ▲                                               │ nothing within timeout
 *        └──────────────── retry (policy.retries) ◄──────┘
 *   ─► consent_decided  granted | declined | no_response  (opt-out: silence = granted, implied;
 *                                                          notify: disclosure only = granted, implied)
 *
 * An answer during the prompt counts (and cuts the prompt short). Evidence is
 * the digit or the recognised words, with their time on the recording clock
 * (ms since the call was answered).
 *
 * The consent folder: stage.ts (this: the decision, media-free) ◄─ phase.ts (the stage on a call's media, and
 * what a decline does) ─► grammar.ts (which keys and words count) ◄─ withdrawal.ts (`*9`, "stop recording").
 * bridge/consent-manager.ts runs them on a live call; consent/ never imports bridge/.
 */
import type { SwitchboardTables } from '../schema/index.ts';
import type { RowOf, Store } from '../store/index.ts';
import type { tables } from '../schema/tables.ts';
import { consent_decided, consent_started } from '../schema/reducers.ts';

export type PolicyRow = RowOf<typeof tables.consent_policies>;
export type ConsentOutcome = 'granted' | 'declined' | 'no_response';

export interface ConsentDecision {
  consentId: string;
  outcome: ConsentOutcome;
  method: 'dtmf' | 'speech' | 'implied';
  evidence: Record<string, unknown>;
}

export interface ConsentAnswer {
  answer: 'yes' | 'no';
  method: 'dtmf' | 'speech';
  evidence: Record<string, unknown>;
}

export interface ConsentStageIo {
  /** Plays a prompt; resolves when played or cut short. */
  say(text: string): Promise<{ heardMs: number; interrupted: boolean }>;
  /** Stops the prompt now (an answer arrived). */
  interrupt(): void;
  /** Subscribes to answers (DTMF 1/2 and, when STT runs, spoken yes/no); returns unsubscribe. */
  onAnswer(listener: (a: ConsentAnswer) => void): () => void;
  sleep(ms: number): Promise<void>;
  /** True once the media is gone (caller hung up, stream dropped): the stage stops without deciding. */
  cancelled(): boolean;
}

/** The stage stopped because the media went away; the consent stays pending for a resumed call. */
export class ConsentCancelled extends Error {
  override readonly name = 'ConsentCancelled';
}

export function promptFor(policy: PolicyRow): string {
  switch (policy.mode) {
    case 'opt-in':
      return `${policy.disclosure_text} To agree, press 1 or say yes. To decline, press 2 or say no.`;
    case 'opt-out':
      return `${policy.disclosure_text} If you do not agree, press 2 or say no.`;
    case 'notify':
      return policy.disclosure_text;
  }
}

export interface ConsentStageArgs {
  store: Store<SwitchboardTables>;
  tenant: string;
  callId: string;
  policy: PolicyRow;
  /** A pending consent of this call to continue (a call resumed mid-stage), if any. */
  pendingConsentId: string | null;
  /** sha256 of the rendered prompt audio, kept on the consent row as evidence of what was played. */
  disclosureSha256?: string | null;
  io: ConsentStageIo;
}

export async function runConsentStage(args: ConsentStageArgs): Promise<ConsentDecision> {
  const { store, policy, io } = args;
  const who = { tenant: args.tenant, caller: 'consent' };
  let consentId = args.pendingConsentId;
  if (!consentId) {
    const started = await store.submit(consent_started, { call_id: args.callId, policy_id: policy.id, disclosure_sha256: args.disclosureSha256 ?? null }, who);
    if (!started.outcome.ok) throw new Error(`consent_started refused: ${started.outcome.error.code}: ${started.outcome.error.message}`);
    consentId = started.outcome.result.consent_id;
  }
  const decision = await listen(policy, io);
  if (io.cancelled()) throw new ConsentCancelled('media closed during the consent stage');
  const decided = await store.submit(
    consent_decided,
    { consent_id: consentId, outcome: decision.outcome, method: decision.method, evidence: decision.evidence },
    who,
  );
  if (!decided.outcome.ok) throw new Error(`consent_decided refused: ${decided.outcome.error.code}: ${decided.outcome.error.message}`);
  return { consentId, ...decision };
}

async function listen(policy: PolicyRow, io: ConsentStageIo): Promise<Omit<ConsentDecision, 'consentId'>> {
  const prompt = promptFor(policy);
  if (policy.mode === 'notify') {
    const played = await io.say(prompt);
    if (io.cancelled()) throw new ConsentCancelled('media closed during the disclosure');
    return { outcome: 'granted', method: 'implied', evidence: { disclosure: 'played', heard_ms: played.heardMs, policy_mode: 'notify' } };
  }
  let answer: ConsentAnswer | null = null;
  let wake: (() => void) | null = null;
  const off = io.onAnswer((a) => {
    if (answer) return;
    answer = a;
    io.interrupt();
    wake?.();
  });
  try {
    for (let attempt = 0; attempt <= policy.retries && !answer; attempt++) {
      await io.say(attempt === 0 ? prompt : `Sorry, I did not get that. ${prompt}`);
      if (answer) break;
      if (io.cancelled()) throw new ConsentCancelled('media closed during the consent prompt');
      await Promise.race([io.sleep(policy.timeout_ms), new Promise<void>((r) => (wake = r))]);
      if (io.cancelled() && !answer) throw new ConsentCancelled('media closed while waiting for an answer');
    }
  } finally {
    off();
  }
  const got = answer as ConsentAnswer | null;
  if (got) return { outcome: got.answer === 'yes' ? 'granted' : 'declined', method: got.method, evidence: got.evidence };
  if (policy.mode === 'opt-out') return { outcome: 'granted', method: 'implied', evidence: { reason: 'no objection within the timeout', attempts: policy.retries + 1 } };
  return { outcome: 'no_response', method: 'implied', evidence: { reason: 'no answer within the timeout', attempts: policy.retries + 1 } };
}
