/**
 * Builds the author-facing `AgentContext` for one turn on top of the bridge's
 * `TurnActions`. Used in-process for built-in agents and inside the worker
 * thread for deployed ones (there `actions` crosses the thread boundary).
 * State is a copy: the turn's changes reach the store only when it completes.
 */
import type { AgentContext, AgentDefinition, AgentState, Json } from './sdk.ts';
import type { TurnActions, TurnInput } from './types.ts';

export function makeContext(input: TurnInput, actions: TurnActions, agent: { name: string; version: string }): { ctx: AgentContext; state: () => Record<string, Json> } {
  const data: Record<string, Json> = structuredClone(input.state);
  const state: AgentState = {
    get: <T extends Json = Json>(key: string) => data[key] as T | undefined,
    set: (key, value) => {
      if (value === undefined) throw new TypeError(`state.set(${key}): undefined is not JSON; use state.delete`);
      data[key] = structuredClone(value);
    },
    delete: (key) => {
      delete data[key];
    },
    all: () => structuredClone(data),
  };
  const ctx: AgentContext = {
    callId: input.callId,
    turn: input.turn,
    agent,
    call: input.call,
    state,
    say: (text) => actions.say(String(text)),
    play: (wav) => actions.play(wav),
    gather: (opts) => actions.gather(opts),
    transfer: (target, opts) => (opts === undefined ? actions.transfer(target) : actions.transfer(target, opts)),
    hangup: (reason) => actions.hangup(reason ?? 'agent hung up'),
    tool: async <R extends Json = Json>(name: string, args: Json) => (await actions.tool(name, args ?? null)) as R,
    note: (text) => actions.note(String(text)),
    secure: async <T>(fn: () => Promise<T> | T, reason?: string) => {
      await actions.pauseRecording(reason ?? 'pci');
      try {
        return await fn();
      } finally {
        await actions.resumeRecording();
      }
    },
    pauseRecording: (reason) => actions.pauseRecording(reason ?? 'pci'),
    resumeRecording: () => actions.resumeRecording(),
  };
  return { ctx, state: () => data };
}

/** Runs one hook of a definition against a context; a missing hook does nothing. */
export async function runHook(def: AgentDefinition, input: TurnInput, ctx: AgentContext): Promise<void> {
  switch (input.hook) {
    case 'onStart':
      return def.onStart?.(ctx);
    case 'onResume':
      return def.onResume?.(ctx, input.resumed ?? { reason: 'media', transcript: [] });
    case 'onUtterance':
      return def.onUtterance?.(ctx, { text: null, durationMs: 0, ...input.utterance, final: input.utterance?.final ?? true });
    case 'onDtmf':
      return def.onDtmf?.(ctx, input.digit ?? '');
    case 'onSilence':
      return def.onSilence?.(ctx, { silentMs: input.silentMs ?? 0 });
    case 'onAnswered':
      return def.onAnswered?.(ctx, input.answered ?? { by: 'unknown', treatedAs: 'human', evidence: {} });
    case 'onTransferFailed':
      return def.onTransferFailed?.(ctx, input.transferFailed ?? { reason: 'failed', target: '' });
    case 'onWhisper':
      return def.onWhisper?.(ctx, input.whisper ?? '');
  }
}
