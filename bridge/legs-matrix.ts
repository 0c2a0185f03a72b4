/**
 * A call's who-hears-whom matrix between the store and the mixer: read back from the call's last `call_matrices`
 * row (schema/call-matrix.ts) so a restart rebuilds the mixer as it was, and the named matrices a warm transfer
 * moves through (media/mix-matrix.ts draws them):
 *
 *   two-party   caller ⇄ agent                                   (no row needed: the default)
 *   hold        caller ◄ hold;  agent ◄ caller                   (the human is being dialled; the agent still listens)
 *   brief       caller ◄ hold;  agent ◄ caller;  human ◄ agent    (the human hears the summary only)
 *   bridged     caller ⇄ human                                   (the agent has left the audio)
 *
 * The writes go through bridge/call-facts.ts (`matrixSet`). Pure reads and data: no media here.
 */
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import { currentMatrix } from '../schema/call-matrix.ts';
import { twoParty, type MixMatrix } from '../media/mix-matrix.ts';
import type { CallRef } from './call-facts.ts';

/** The leg id of the human a warm transfer dials. */
export const HUMAN_LEG = 'human-1';

/** The matrix in force for the call (its last row), with the row's reason and the other call it names; null: none (two-party). */
export function storedMatrix(store: Pick<Store<SwitchboardTables>, 'read'>, ref: CallRef): { matrix: MixMatrix; reason: string; peerCallId: string | null; n: number } | null {
  const row = currentMatrix(store.read(ref.tenant).call_matrices.find({ call_id: ref.callId }));
  if (!row) return null;
  return { matrix: { legs: row.legs, hears: row.hears }, reason: row.reason, peerCallId: row.peer_call_id, n: row.n };
}

/**
 * True when a matrix row's reason says the caller is bridged to the person its row names (`peer_call_id`): a warm
 * transfer accepted, a blind one answered, or a bridged human's call onward answered (bridge/transfer-dial.ts).
 */
export function isBridgedReason(reason: string): boolean {
  return reason === 'warm:bridged' || reason === 'blind:bridged' || reason === 'refer:bridged';
}

/** True when `m` is the plain call (caller ⇄ agent, nothing else): the media path bypasses the mixer. */
export function isTwoParty(m: MixMatrix): boolean {
  const plain = twoParty();
  if (m.legs.length !== 2) return false;
  return plain.legs.every((l) => m.legs.some((x) => x.id === l.id && x.role === l.role)) && hearsOnly(m, 'caller', 'agent') && hearsOnly(m, 'agent', 'caller');
}

function hearsOnly(m: MixMatrix, listener: string, speaker: string): boolean {
  const s = m.hears[listener] ?? [];
  return s.length === 1 && s[0] === speaker;
}

const LEGS_WITH_HUMAN: MixMatrix['legs'] = [
  { id: 'caller', role: 'caller' },
  { id: 'agent', role: 'agent' },
  { id: HUMAN_LEG, role: 'human' },
  { id: 'hold', role: 'hold' },
];

/** The matrices of a warm transfer (see the header). */
export const WARM = {
  /** The human is not a leg yet (it is being dialled). */
  hold: (): MixMatrix => ({ legs: LEGS_WITH_HUMAN.filter((l) => l.id !== HUMAN_LEG), hears: { caller: ['hold'], agent: ['caller'] } }),
  brief: (): MixMatrix => ({ legs: LEGS_WITH_HUMAN, hears: { caller: ['hold'], agent: ['caller'], [HUMAN_LEG]: ['agent'] } }),
  bridged: (): MixMatrix => ({ legs: LEGS_WITH_HUMAN, hears: { caller: [HUMAN_LEG], [HUMAN_LEG]: ['caller'] } }),
};
