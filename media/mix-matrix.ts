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
 * Pure data and functions: no I/O, no clock.
 */

/** What a leg is in the call. `hold` is a source only (the hold music or tone), never a listener. */
export const MIX_ROLES = ['caller', 'agent', 'human', 'supervisor', 'hold'] as const;
export type MixRole = (typeof MIX_ROLES)[number];

export interface MixLeg {
  /** Unique within the call: `caller`, `agent`, `human-1`, `supervisor-usr_…`, `hold`. */
  id: string;
  role: MixRole;
}

export interface MixMatrix {
  legs: readonly MixLeg[];
  /** listener id → the ids it hears. A leg absent here hears nothing. */
  hears: Readonly<Record<string, readonly string[]>>;
}

/** The most legs a call mixes: caller, agent, a human, a supervisor, hold, and room for one more human. */
export const MAX_MIX_LEGS = 6;
const LEG_ID = /^[a-z][a-z0-9_-]{0,99}$/;

/** Why `m` is not a matrix the mixer can apply, or null when it is. */
export function matrixProblem(m: MixMatrix): string | null {
  if (m.legs.length === 0) return 'a call mixes at least one leg';
  if (m.legs.length > MAX_MIX_LEGS) return `at most ${MAX_MIX_LEGS} legs are mixed (got ${m.legs.length})`;
  const roles = new Map<string, MixRole>();
  for (const leg of m.legs) {
    if (!LEG_ID.test(leg.id)) return `leg id ${JSON.stringify(leg.id)}: lowercase letters, digits, - and _, starting with a letter`;
    if (!(MIX_ROLES as readonly string[]).includes(leg.role)) return `leg ${leg.id}: unknown role ${JSON.stringify(leg.role)}`;
    if (roles.has(leg.id)) return `leg ${leg.id} appears twice`;
    roles.set(leg.id, leg.role);
  }
  if ([...roles.values()].filter((r) => r === 'caller').length !== 1) return 'a call has exactly one caller leg';
  for (const [listener, speakers] of Object.entries(m.hears)) {
    const role = roles.get(listener);
    if (!role) return `hears: ${listener} is not a leg of the call`;
    if (role === 'hold') return 'hears: the hold source listens to nobody';
    const seen = new Set<string>();
    for (const s of speakers) {
      if (!roles.has(s)) return `hears: ${listener} hears ${s}, which is not a leg of the call`;
      if (s === listener) return `hears: ${listener} would hear itself`;
      if (seen.has(s)) return `hears: ${listener} hears ${s} twice`;
      seen.add(s);
    }
  }
  return null;
}

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

/** The same matrix written in one order (legs by id, speakers sorted): two equal matrices compare equal as JSON. */
export function canonicalMatrix(m: MixMatrix): MixMatrix {
  const legs = [...m.legs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((l) => ({ id: l.id, role: l.role }));
  const hears: Record<string, string[]> = {};
  for (const listener of Object.keys(m.hears).sort()) {
    const speakers = [...(m.hears[listener] ?? [])].sort();
    if (speakers.length > 0) hears[listener] = speakers;
  }
  return { legs, hears };
}
