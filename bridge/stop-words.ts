/**
 * Stop words: a caller who says "stop", "wait", "hold on" or "no" over the agent interrupts it as soon as the
 * recogniser has the word — interim or final — without waiting for `bargeIn.minSpeechMs` of voice.
 *
 *   pipeline 'speechStart' while the agent speaks ─► armed at that time (recording clock)
 *   recogniser text (bridge/content-manager.ts `onText`, interim or final; never stored by this)
 *        ─► armed, the agent still speaking, and the words end after the arming (less START_SLACK_MS)?
 *        ─► one of the agent's `turnTaking.stopWords` said as whole words?
 *        ─► pipeline.interruptForStopWord(): agent audio cleared now, the barge-in gate's candidate forgotten
 *           ─► pipeline 'bargeIn' {stopWord} ─► call_turn_decided interrupted, by `stop_word` (bridge/turn-taking.ts)
 *
 * The words stay an utterance: when the caller stops, the agent gets "stop" as an ordinary `onUtterance` turn (the
 * gate was cancelled, so it is no backchannel). Words from before the caller started speaking over the agent (a late
 * result of an earlier sentence) never stop it; neither does a spoken command (content-manager.ts hands none here).
 */
import { spotPhrase } from '../speech/vocabulary.ts';
import type { CallContext } from './call-context.ts';

/** The VAD starts speech a few frames into it, and the recogniser's clock is not the recording's to the ms. */
export const START_SLACK_MS = 500;

export interface HeardText {
  text: string;
  final: boolean;
  /** Recording clock (ms since answer). */
  startMs: number;
  endMs: number;
}

export class StopWords {
  /** When the caller began speaking over the agent (recording clock); null: not speaking over it. */
  private armedAtMs: number | null = null;

  constructor(
    private readonly ctx: CallContext,
    private readonly words: () => readonly string[],
  ) {}

  /** Arms on each speech start over the agent. */
  watch(): void {
    const { pipeline } = this.ctx;
    pipeline.on('speechStart', () => {
      this.armedAtMs = pipeline.agentSpeaking ? this.ctx.clockMs() : null;
    });
  }

  /** The recogniser's text: interrupts the agent when it holds a stop word said over it; true if it did. */
  heard(said: HeardText): boolean {
    const { pipeline } = this.ctx;
    if (this.armedAtMs === null || !pipeline.agentSpeaking) return false;
    if (said.endMs < this.armedAtMs - START_SLACK_MS) return false;
    const list = this.words();
    const word = list.length === 0 ? null : spotPhrase(said.text, list);
    if (word === null) return false;
    this.armedAtMs = null;
    this.ctx.log.info({ final: said.final }, 'stop word over the agent: interrupting');
    return pipeline.interruptForStopWord();
  }
}
