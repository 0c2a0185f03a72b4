/**
 * The who-hears-whom matrices of a supervised call (media/mix-matrix.ts draws them; bridge/supervisor.ts writes each
 * as a `call_matrices` row through bridge/call-facts.ts and applies it to the call's mixer):
 *
 *   listen     caller ⇄ agent;  supervisor ◄ caller, agent                      (nobody hears the supervisor)
 *   whisper    caller ⇄ agent;  supervisor ◄ caller, agent;  agent ◄ supervisor  (speech-to-text → onWhisper;
 *                                                                                never the caller)
 *   takeover   caller ⇄ supervisor;  agent ◄ caller, supervisor                 (the agent is held: no turns, it
 *                                                                                gets the transcript at hand-back)
 *   left       caller ⇄ agent                                                   (two-party again: no mixer)
 *
 * Recording follows (media/mix-matrix.ts `recordingTracks`): the caller's channel is the caller; "everyone else" is
 * what the caller heard — the agent, or in take-over the supervisor — so a whisper is never on it.
 * Pure data: no I/O, no clock.
 */
import { twoParty, type MixMatrix } from '../media/mix-matrix.ts';
import type { SupervisorMode } from '../schema/supervision.ts';

/** The supervisor's leg id in the call's matrix (one supervisor per call at a time). */
export const SUPERVISOR_LEG = 'supervisor';

const LEGS: MixMatrix['legs'] = [
  { id: 'caller', role: 'caller' },
  { id: 'agent', role: 'agent' },
  { id: SUPERVISOR_LEG, role: 'supervisor' },
];

/** The matrix of a call whose supervisor is in `mode` (see the header). */
export function supervisedMatrix(mode: SupervisorMode): MixMatrix {
  if (mode === 'listen') return { legs: LEGS, hears: { caller: ['agent'], agent: ['caller'], [SUPERVISOR_LEG]: ['caller', 'agent'] } };
  if (mode === 'whisper') return { legs: LEGS, hears: { caller: ['agent'], agent: ['caller', SUPERVISOR_LEG], [SUPERVISOR_LEG]: ['caller', 'agent'] } };
  return { legs: LEGS, hears: { caller: [SUPERVISOR_LEG], agent: ['caller', SUPERVISOR_LEG], [SUPERVISOR_LEG]: ['caller'] } };
}

/** The matrix once the supervisor has left: the plain call. */
export function unsupervisedMatrix(): MixMatrix {
  return twoParty();
}

/** The `call_matrices.reason` of each step. */
export function supervisorReason(mode: SupervisorMode | 'left'): string {
  return `supervisor:${mode}`;
}
