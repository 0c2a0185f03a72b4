/**
 * The schema's derived indexes, declared as data; the store owns their SQL and
 * keeps them current (store/derived.ts), outside the table digest.
 *
 *   transcript_fts  full-text search over transcript segments' text; each entry
 *                   carries the segment's call_id (and tenant), so a match
 *                   finds calls. Queries go through store.query(tenant).match.
 *                   The column holds sealed text (schema/content.ts): the
 *                   index is fed the text opened with the call's key (`opener`,
 *                   recording/content-seal.ts) on the node that sealed it, and
 *                   its entries go with the row's text when the call is erased
 *                   (FTS5 secure-delete: no token of an erased call remains).
 *   call_events     a call's events in the log: those whose args name the call
 *                   (call_id) or one of its consents, recordings or agent
 *                   actions (consent_id, recording_id, action_id — reducers that
 *                   act on those carry no call_id), and call_received, which
 *                   names the call only in its result.
 */
import type { DerivedIndex } from '../store/index.ts';

export const TRANSCRIPT_FTS = 'transcript_fts';
export const CALL_EVENTS = 'call_events';

export const transcriptSearch = {
  kind: 'fulltext',
  name: TRANSCRIPT_FTS,
  table: 'transcript_segments',
  text: 'text',
  carry: ['call_id'],
  opener: 'call_id',
} as const satisfies DerivedIndex;

export const callEventsIndex = {
  kind: 'log',
  name: CALL_EVENTS,
  subject: ['call_id', 'consent_id', 'recording_id', 'action_id'],
  results: { call_received: 'call_id' },
  related: { consents: 'call_id', recordings: 'call_id', agent_actions: 'call_id' },
} as const satisfies DerivedIndex;
