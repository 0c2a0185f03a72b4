/**
 * Full-text search over transcripts (SQLite FTS5): a derived index kept in
 * step with `transcript_segments` by triggers, so it commits and rolls back
 * with the command that wrote the segment. Queries always carry the tenant.
 */
export const TRANSCRIPT_FTS = 'transcript_fts';

export const transcriptSearch = {
  name: TRANSCRIPT_FTS,
  on: 'transcript_segments',
  ddl: [
    `CREATE VIRTUAL TABLE ${TRANSCRIPT_FTS} USING fts5(text, segment_id UNINDEXED, call_id UNINDEXED, tenant UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')`,
    `CREATE TRIGGER transcript_fts_ai AFTER INSERT ON transcript_segments BEGIN
       INSERT INTO ${TRANSCRIPT_FTS} (text, segment_id, call_id, tenant) VALUES (new.text, new.id, new.call_id, new.tenant);
     END`,
    `CREATE TRIGGER transcript_fts_ad AFTER DELETE ON transcript_segments BEGIN
       DELETE FROM ${TRANSCRIPT_FTS} WHERE segment_id = old.id;
     END`,
    `CREATE TRIGGER transcript_fts_au AFTER UPDATE OF text ON transcript_segments BEGIN
       DELETE FROM ${TRANSCRIPT_FTS} WHERE segment_id = old.id;
       INSERT INTO ${TRANSCRIPT_FTS} (text, segment_id, call_id, tenant) VALUES (new.text, new.id, new.call_id, new.tenant);
     END`,
  ],
  rebuild: `INSERT INTO ${TRANSCRIPT_FTS} (text, segment_id, call_id, tenant) SELECT text, id, call_id, tenant FROM transcript_segments`,
} as const;

/**
 * Turns what a user typed into an FTS5 query that cannot be a syntax error:
 * each word becomes a quoted prefix term, all of them required.
 */
export function ftsQuery(input: string): string | null {
  const words = input.normalize('NFKC').match(/[\p{L}\p{N}']+/gu) ?? [];
  if (words.length === 0) return null;
  return words.slice(0, 16).map((w) => `"${w.replace(/"/g, '""')}"*`).join(' ');
}

/**
 * Finds a call's events in the log without a scan. A reducer names what it
 * acts on in its args — `call_id`, or one of the call's consents, recordings
 * or agent actions — so one expression index over that "subject" finds them
 * all; `call_received` names the call only in its outcome.
 */
const SUBJECT = `coalesce(json_extract(args, '$.call_id'), json_extract(args, '$.consent_id'), json_extract(args, '$.recording_id'), json_extract(args, '$.action_id'))`;

export const callEventsIndex = {
  name: '_events_subject',
  on: '_events',
  ddl: [
    `CREATE INDEX _events_subject ON _events (${SUBJECT}) WHERE ${SUBJECT} IS NOT NULL`,
    `CREATE INDEX _events_received_call_id ON _events (json_extract(outcome, '$.result.call_id')) WHERE reducer = 'call_received'`,
  ],
  rebuild: `SELECT 1`,
} as const;

/** The seqs of a call's events (ascending), using the indexes above. Param: `@call`. */
export const CALL_EVENTS_SQL = `
  WITH subject(id) AS (
    SELECT @call
    UNION ALL SELECT id FROM consents WHERE call_id = @call
    UNION ALL SELECT id FROM recordings WHERE call_id = @call
    UNION ALL SELECT id FROM agent_actions WHERE call_id = @call)
  SELECT e.seq FROM subject CROSS JOIN _events AS e INDEXED BY _events_subject
    WHERE ${SUBJECT.replace(/args/g, 'e.args')} = subject.id AND ${SUBJECT.replace(/args/g, 'e.args')} IS NOT NULL
  UNION
  SELECT seq FROM _events WHERE reducer = 'call_received' AND json_extract(outcome, '$.result.call_id') = @call
  ORDER BY seq`;
