/**
 * Who hears whom in a call of several legs: the matrix the mixer (media/mixer.ts) applies every 20 ms slot, and the
 * one fact the log keeps about it (schema/call-matrix.ts writes it as a row whenever it changes, so the log says
 * exactly who could hear whom and when, and a restart rebuilds the mixer from the row).
 *
 *   legs   caller ─ agent ─ human ─ supervisor ─ hold       (ids are the call's own: `caller`, `agent`, `human-1`, …)
 *   hears  listener ─► the speakers whose audio is summed into its outbound slot
 *
 * Examples (a leg never hears itself):
 *
 *   two-party       caller ⇄ agent
 *   warm transfer   caller ◄ hold;  agent ⇄ human               (the agent briefs the human; the caller hears hold)
 *   bridged         caller ⇄ human                              (the agent has left the audio)
 *   listen          caller ⇄ agent;  supervisor ◄ caller, agent
 *   whisper         caller ⇄ agent;  supervisor ◄ caller, agent;  agent ◄ supervisor   (never the caller)
 *   take over       caller ⇄ supervisor;  agent ◄ caller, supervisor (it keeps the transcript, says nothing)
 *
 * Recording follows the matrix (`recordingTracks`): the caller's own audio, "everyone else" exactly as the caller
 * heard it (so a whisper, which the caller never hears, is never on it), and one track per leg that spoke to someone
 * while the caller could not hear it (a whisper), so it is kept without reaching the caller's channel.
 * Pure data and functions: no I/O, no clock. The shape itself and its checks (`matrixProblem`, `canonicalMatrix`) live
 * in schema/mix-shape.ts, where the row's reducer checks a matrix too; they are re-exported here.
 */

export { MIX_ROLES, MAX_MIX_LEGS, matrixProblem, canonicalMatrix, type MixRole, type MixLeg, type MixMatrix } from '../schema/mix-shape.ts';
import type { MixMatrix } from '../schema/mix-shape.ts';

/** True when `listener` hears `speaker` under `m`. */
export function hears(m: MixMatrix, listener: string, speaker: string): boolean {
  return m.hears[listener]?.includes(speaker) ?? false;
}

/** The caller leg's id. */
export function callerOf(m: MixMatrix): string {
  const caller = m.legs.find((l) => l.role === 'caller');
  if (!caller) throw new Error('mix matrix without a caller leg');
  return caller.id;
}

/** The plain call: the caller and the agent hear each other. */
export function twoParty(): MixMatrix {
  return { legs: [{ id: 'caller', role: 'caller' }, { id: 'agent', role: 'agent' }], hears: { caller: ['agent'], agent: ['caller'] } };
}

export interface RecordingTracks {
  /** The caller's own audio. */
  caller: string;
  /** Summed as the caller heard them: the "everyone else" channel. */
  heardByCaller: readonly string[];
  /** Legs heard by someone while the caller could not hear them (a whisper): each on a track of its own. */
  aside: readonly string[];
}

/** What the recording keeps under `m` (see the header). The hold source is never recorded as an aside. */
export function recordingTracks(m: MixMatrix): RecordingTracks {
  const caller = callerOf(m);
  const heardByCaller = [...(m.hears[caller] ?? [])];
  const role = new Map(m.legs.map((l) => [l.id, l.role]));
  const aside = m.legs
    .map((l) => l.id)
    .filter((id) => id !== caller && !heardByCaller.includes(id) && role.get(id) !== 'hold')
    .filter((id) => Object.entries(m.hears).some(([listener, speakers]) => listener !== caller && speakers.includes(id)));
  return { caller, heardByCaller, aside };
}
