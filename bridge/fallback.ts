/**
 * A paused agent's calls, on this node: where each goes (schema/agent-pause.ts `fallbackFor`, a pure function of
 * the store) and the watcher that tells live sessions when their agent is paused. Provider-neutral: a fallback
 * is carried out by the session (turn-manager.ts) with what every leg has — speech, a hang-up, and the blind
 * transfer of legs that can redirect (a leg that cannot hears the message instead).
 *
 *   agent_paused (any node; every node applies the log) ─► followPauses: each session here on that agent
 *     ─► pauseCheck(): queued after the turn it is running ─► fallback, unless the call was live before a
 *        keep_live pause began:
 *          agent     ─► the call moves to the other agent (onStart), the paused agent's worker is released
 *          transfer  ─► call_transfer_started (the call must be active: past its consent phase)
 *          message   ─► the message is spoken, then call_ended 'agent paused'
 *   a new call to a paused agent (call-session.ts attach): a message at once (no consent phase: nothing is
 *   recorded); another agent from the start; a transfer once the consent phase is done.
 */
import type { SwitchboardTables } from '../schema/index.ts';
import { fallbackFor, type Fallback } from '../schema/agent-pause.ts';
import type { Store } from '../store/index.ts';

export type { Fallback } from '../schema/agent-pause.ts';

/** Where the call goes now if `agent` (the agent it runs) is paused; null: it keeps its agent. */
export function pauseFallback(store: Store<SwitchboardTables>, ref: { tenant: string; callId: string }, agent: string | null): Fallback | null {
  const view = store.read(ref.tenant);
  const call = view.calls.get(ref.callId);
  if (!call || !agent) return null;
  return fallbackFor(view, { tenant: ref.tenant, agent, number_id: call.number_id, received_at: call.received_at });
}

/** What the watcher needs of a live session. */
export interface PausableSession {
  readonly ref: { tenant: string };
  readonly agentName: string | null;
  pauseCheck(): void;
}

/** Tells the sessions on an agent when it is paused (from any node). Returns the unsubscribe. */
export function followPauses(store: Store<SwitchboardTables>, sessions: () => Iterable<PausableSession>): () => void {
  return store.subscribe('agent_pauses', {}, null, (d) => {
    const row = d.new as { tenant: string; agent: string; resumed_at: number | null } | null;
    if (!row || row.resumed_at !== null || d.old) return;
    for (const s of sessions()) if (s.ref.tenant === row.tenant && s.agentName === row.agent) s.pauseCheck();
  }).unsubscribe;
}
