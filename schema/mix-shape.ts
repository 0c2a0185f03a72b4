/**
 * The shape of a who-hears-whom matrix and its checks, shared by the row (schema/call-matrix.ts, whose reducer refuses
 * a matrix the mixer could not apply) and the media (media/mix-matrix.ts re-exports all of it; the mixer applies it).
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
