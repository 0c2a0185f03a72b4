/**
 * Resuming a subscription from a seq its client saw (`Store.resume`):
 *
 *   since > head            → { kind: 'beyond_head' }     (nothing registered; the client names a seq this node
 *                                                          has not applied — a typo, or a lagging cluster node)
 *   journal covers (since, head] for the table, within the resume limit
 *                           → { kind: 'resumed', seq: head, deltas }   then live deltas after head
 *   otherwise               → { kind: 'snapshot', reason, snapshot }   then live deltas (a fresh subscription)
 *
 * The deltas are the journal's changes (store/changes.ts) passed through the subscription's own filter, tenant
 * included (store/subscriptions.ts deltaFor) — the same function live dispatch uses, so a resumed client sees
 * exactly what it would have seen had it stayed connected. It all runs in one synchronous step: nothing commits
 * between reading the journal up to `head` and adding the live subscriber at `head`, so no delta is missed or
 * repeated at the seam (a batch committed but not yet durable is in both SQLite and the journal, and its live
 * deltas are skipped for this subscriber, exactly as for a snapshot).
 */
import type { ChangeJournal, ResumeRefusal } from './changes.ts';
import { compileFilter, deltaFor, type Delta, type Filter, type Snapshot } from './subscriptions.ts';

export type Resumed =
  | { kind: 'resumed'; seq: number; deltas: Delta[]; unsubscribe: () => void }
  | { kind: 'snapshot'; reason: ResumeRefusal; snapshot: Snapshot; unsubscribe: () => void }
  | { kind: 'beyond_head'; head: number };

export interface ResumeInput {
  journal: ChangeJournal;
  head: number;
  since: number;
  table: string;
  filter: Filter;
  /** The tenant ANDed into the filter (null: unscoped table or operator access). */
  tenant: string | null;
}

export function resumeSubscription(
  input: ResumeInput,
  start: { snapshot: () => { snapshot: Snapshot; unsubscribe: () => void }; live: () => () => void },
): Resumed {
  const { journal, head, since, table } = input;
  if (since > head) return { kind: 'beyond_head', head };
  const read = journal.read(table, since, head);
  if (!read.ok) return { kind: 'snapshot', reason: read.reason, ...start.snapshot() };
  const filter = compileFilter(input.filter, input.tenant);
  const now = performance.now();
  const deltas: Delta[] = [];
  for (const { seq, change } of read.changes) {
    const d = deltaFor(filter, seq, change, now);
    if (d) deltas.push(d);
  }
  return { kind: 'resumed', seq: head, deltas, unsubscribe: start.live() };
}
