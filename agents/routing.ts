/**
 * Which agent version a new call runs: a pure function of the name's versions
 * and the call id, so every node (and a restarted one) routes a call alike.
 */
import { createHash } from 'node:crypto';
import { versionNumber, type VersionRow } from '../schema/agent-versions.ts';

/** 0–99 from a call id: the same call always lands in the same bucket. */
export function rolloutBucket(callId: string): number {
  return createHash('sha256').update(callId).digest().readUInt32BE(0) % 100;
}

/**
 * The version a new call runs: the newest live version if the call's bucket
 * is under its rollout, else the previous live one; null when none is live.
 */
export function pickVersion<V extends Pick<VersionRow, 'status' | 'rollout' | 'version'>>(versions: readonly V[], callId: string): V | null {
  const live = versions.filter((v) => v.status === 'live').sort((a, b) => versionNumber(a) - versionNumber(b));
  const newest = live[live.length - 1];
  if (!newest) return null;
  const previous = live[live.length - 2];
  if (!previous || rolloutBucket(callId) < newest.rollout) return newest;
  return previous;
}

