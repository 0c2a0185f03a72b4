/**
 * Turn-taking on one call: the agent's settings, the barge-in decisions' records, backchannels that start no turn,
 * and the adaptive end of turn.
 *
 *   pipeline 'duck'         (the caller's first voiced frame over the agent: its audio ducked, media/ducker.ts)
 *   pipeline 'bargeIn'      (voiced ≥ bargeIn.minSpeechMs over the agent) ─► call_turn_decided interrupted (by voice)
 *   a stop word heard over the agent (bridge/stop-words.ts)               ─► call_turn_decided interrupted (by stop_word)
 *   pipeline 'backchannel'  (shorter, over the agent; the duck released)   ─► call_turn_decided backchannel
 *        (each row says how far the agent had been ducked: `duck_db`)
 *        └─ its utterance is queued as a backchannel: when its turn comes and the words are known, words that are all
 *           acknowledgements ("uh-huh", "okay"; `backchannel.words`) — or no words at all — start no agent turn;
 *           anything else ("stop") is an ordinary utterance turn (the agent heard it, late but not lost)
 *   pipeline 'speechEnd' ─► EndOfTurnGate (bridge/end-of-turn.ts): the turn ends after the silence its words need
 *   pipeline 'speechStart' ─► a pending end of turn is cancelled (the caller went on)
 *
 * A decision is a row (schema/turn-taking.ts), not a transcript flag: it carries no words, so it is the same for a
 * call without a recogniser, and it shows in the call's events. The settings come from the call's agent
 * (`defineAgent({ turnTaking })` merged over media/turn-taking.ts DEFAULT_TURN_TAKING); a migration to another
 * version takes that version's settings at the turn boundary. The VAD (energy or silero, `SWITCHBOARD_VAD`) is
 * built here for the pipeline (media/vad-factory.ts).
 */
import type { Agent } from '../agents/types.ts';
import type { MediaPipelineOptions } from '../media/pipeline.ts';
import { isBackchannelText, resolveTurnTaking, type TurnTakingSettings } from '../media/turn-taking.ts';
import type { VadFactory } from '../media/vad-factory.ts';
import type { CallContext } from './call-context.ts';
import * as facts from './call-facts.ts';
import { EndOfTurnGate, vadReleaseMs } from './end-of-turn.ts';
import { StopWords, type HeardText } from './stop-words.ts';

/** The agent's settings, or the defaults when its options are malformed (a worker agent checked them at deploy). */
export function agentTurnTaking(agent: Agent, warn?: (msg: string) => void): TurnTakingSettings {
  try {
    return resolveTurnTaking(agent.turnTaking);
  } catch (err) {
    warn?.((err as Error).message);
    return resolveTurnTaking(undefined);
  }
}

/** The pipeline's options for a call answered by `agent`: its barge-in threshold, the VAD and its release. */
export function pipelineOptions(agent: Agent, vad: VadFactory | undefined): MediaPipelineOptions {
  const settings = agentTurnTaking(agent);
  const releaseMs = vadReleaseMs(settings.endOfTurn);
  const releaseFrames = Math.round(releaseMs / 20);
  const detector = vad?.create({ releaseMs });
  return { turnTaking: settings, ...(detector ? { detector } : {}), ...(releaseMs !== 400 ? { vad: { releaseFrames } } : {}) };
}

export class TurnTaking {
  private settings: TurnTakingSettings;
  private readonly endGate: EndOfTurnGate;
  private backchannelPending = false;
  private readonly stopWords: StopWords;

  constructor(private readonly ctx: CallContext) {
    this.settings = agentTurnTaking(ctx.agent, (msg) => ctx.log.warn({ err: msg }, 'agent turnTaking ignored'));
    this.endGate = new EndOfTurnGate(this.settings.endOfTurn, vadReleaseMs(this.settings.endOfTurn));
    this.stopWords = new StopWords(ctx, () => (this.settings.bargeIn.enabled ? this.settings.stopWords : []));
  }

  /** The recogniser's text as it comes (interim or final): a stop word over the agent interrupts it. */
  heard(said: HeardText): void {
    this.stopWords.heard(said);
  }

  /** The call moved to another agent version: its settings apply from now on. */
  agentChanged(agent: Agent): void {
    this.settings = agentTurnTaking(agent, (msg) => this.ctx.log.warn({ err: msg }, 'agent turnTaking ignored'));
    this.endGate.set(this.settings.endOfTurn);
    this.ctx.pipeline.setBargeIn(this.settings.bargeIn);
  }

  /** Wires the pipeline's events: `utterance` is called when a turn's speech has ended (backchannel or not). */
  watch(utterance: (durationMs: number, backchannel: boolean) => void, speechStarted: () => void): void {
    const { pipeline, log } = this.ctx;
    this.stopWords.watch();
    pipeline.on('bargeIn', (info) => {
      const by = info.stopWord ? 'stop_word' : 'voice';
      log.info({ droppedMs: info.droppedMs, voicedMs: info.voicedMs, duckDb: info.duckDb, by, heard: info.interrupted.map((p) => p.heardMs) }, 'barge-in');
      this.record({ decision: 'interrupted', voicedMs: info.voicedMs, droppedMs: info.droppedMs, heardMs: info.interrupted[0]?.heardMs ?? null, duckDb: info.duckDb, by });
    });
    pipeline.on('backchannel', (info) => {
      log.info({ voicedMs: info.voicedMs, duckDb: info.duckDb }, 'backchannel: the agent goes on');
      this.backchannelPending = true;
      this.record({ decision: 'backchannel', voicedMs: info.voicedMs, droppedMs: 0, heardMs: null, duckDb: info.duckDb, by: 'voice' });
    });
    pipeline.on('speechStart', () => {
      this.endGate.speechStarted();
      speechStarted();
    });
    pipeline.on('speechEnd', (info) => {
      const backchannel = this.backchannelPending;
      this.backchannelPending = false;
      if (backchannel) return utterance(info.durationMs, true); // decided by its words, in its turn
      this.endGate.speechEnded(this.peekWords(), () => utterance(info.durationMs, false));
    });
  }

  /** The agent asked for the recogniser's interim text (`turnTaking.utterance.interim`). */
  get interimWanted(): boolean {
    return this.settings.utterance.interim;
  }

  /** True when a backchannel's words (null: none heard) start no agent turn. */
  isAcknowledgement(text: string | null): boolean {
    return text === null || isBackchannelText(text, this.settings.backchannel.words);
  }

  close(): void {
    this.endGate.close();
  }

  /** Set by the session: the caller's words so far, in memory (bridge/content-manager.ts). */
  peekWords: () => string | null = () => null;

  private record(d: Omit<Parameters<typeof facts.turnDecided>[2], 'atMs'>): void {
    const { ctx } = this;
    const decision = d.decision;
    const atMs = ctx.clockMs();
    facts
      .turnDecided(ctx.deps.store, ctx.ref, { ...d, atMs }, { caller: ctx.who().caller })
      .then((r) => void (r.ok || ctx.log.warn({ outcome: r, decision }, 'turn decision not recorded')))
      .catch((err: unknown) => ctx.log.warn({ err: (err as Error).message, decision }, 'turn decision not recorded'));
  }
}
