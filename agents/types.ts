/**
 * The agent contract the call bridge drives. The agent SDK issue generalises
 * it (defineAgent, worker threads, tools); the built-in `default` agent and the
 * bridge already speak it. An agent never sees a provider or a socket.
 */
import type { Json } from '../store/index.ts';

export interface SayResult {
  durationMs: number;
  heardMs: number;
  /** The caller spoke over it (barge-in) and the rest was dropped. */
  interrupted: boolean;
}

export interface AgentTurnContext {
  readonly callId: string;
  /** 1-based turn number; survives restarts (stored in agent_state). */
  readonly turn: number;
  /** Agent-owned state, saved after every turn. */
  readonly state: Record<string, Json>;
  say(text: string): Promise<SayResult>;
  hangup(reason: string): Promise<void>;
}

export interface Utterance {
  /** Recognised text, or null when no speech-to-text runs on this call. */
  text: string | null;
  durationMs: number;
}

export interface Agent {
  readonly name: string;
  readonly version: string;
  onStart(ctx: AgentTurnContext): Promise<void> | void;
  onUtterance(ctx: AgentTurnContext, utterance: Utterance): Promise<void> | void;
  onDtmf?(ctx: AgentTurnContext, digit: string): Promise<void> | void;
  /** The call came back after its media was lost (gateway restart, network): pick up where it was. */
  onResume?(ctx: AgentTurnContext): Promise<void> | void;
}
