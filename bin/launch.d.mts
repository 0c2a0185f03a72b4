/** Types of bin/launch.mjs (the launcher is plain JavaScript: it runs before anything could compile TypeScript). */
export type Entry = { kind: 'dist'; main: string } | { kind: 'source'; reason: string };
export function chooseEntry(root: string): Entry;
