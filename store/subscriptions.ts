/**
 * Live subscriptions: a subscriber names a table and an equality / IN filter;
 * the tenant filter is injected by the caller's session, never by the client.
 * It receives a snapshot with its seq, then row deltas in commit order.
 *
 * Index: per table, per column, per value → subscribers. Each subscription is
 * indexed under one column of its filter (the first non-tenant one, else the
 * tenant). A committed change looks up the old and new row's value in each
 * indexed column, so its cost is O(changed rows × matching subscribers) and
 * never a re-query. A row moving out of a filter is a `delete` for that
 * subscriber, moving in is an `insert`, so snapshot + deltas always equal the
 * filtered table.
 *
 * Resuming (`Store.resume`): the same filter and the same `deltaFor` turn the change journal's
 * changes after a client's seq (store/changes.ts) into the deltas it missed, then the subscriber is added here
 * at the head — so replayed + live deltas are exactly what it would have received had it stayed.
 */
import type { ChangeOp, Row, RowChange } from './accessor.ts';
import type { CommittedBatch } from './engine.ts';

export type FilterValue = string | number | boolean | null;
export type Filter = Record<string, FilterValue | ReadonlyArray<FilterValue>>;

export interface Delta {
  seq: number;
  table: string;
  op: ChangeOp;
  old: Row | null;
  new: Row | null;
  /** performance.now() when the commit carrying this change returned (lets a subscriber measure delivery lag). */
  committedAt: number;
}

export interface Snapshot {
  seq: number;
  rows: Row[];
}

export type DeltaListener = (delta: Delta) => void;

/** A filter including the injected tenant, sorted by column; each entry is a set of accepted values. */
export type CompiledFilter = Array<[string, ReadonlySet<FilterValue>]>;

/** The client's filter ANDed with the session's tenant (unless null: unscoped operator access). */
export function compileFilter(filter: Filter, tenant: string | null): CompiledFilter {
  const merged: Filter = { ...filter };
  if (tenant !== null) merged.tenant = tenant;
  return Object.entries(merged)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([col, v]): [string, ReadonlySet<FilterValue>] => [col, new Set(Array.isArray(v) ? v : [v as FilterValue])]);
}

/** Whether a row passes a compiled filter. */
export function rowMatches(filter: CompiledFilter, row: Row | null): boolean {
  if (!row) return false;
  for (const [col, accepted] of filter) if (!accepted.has(row[col] as FilterValue)) return false;
  return true;
}

/** What a committed change is for a subscriber with `filter`: a delta, or null when it neither was nor is in it. */
export function deltaFor(filter: CompiledFilter, seq: number, change: RowChange, committedAt: number): Delta | null {
  const wasIn = rowMatches(filter, change.old);
  const isIn = rowMatches(filter, change.new);
  if (!wasIn && !isIn) return null;
  const op: ChangeOp = wasIn && isIn ? 'update' : isIn ? 'insert' : 'delete';
  return { seq, table: change.table, op, old: op === 'insert' ? null : change.old, new: op === 'delete' ? null : change.new, committedAt };
}

interface Sub {
  id: number;
  table: string;
  filter: CompiledFilter;
  indexColumn: string | null;
  indexValues: FilterValue[];
  listener: DeltaListener;
  mark: number;
  /** The seq its snapshot was taken at: changes up to it are in the snapshot already. */
  since: number;
}

export class SubscriptionHub {
  /** table → column → value → subscribers */
  private readonly index = new Map<string, Map<string, Map<FilterValue, Set<Sub>>>>();
  /** subscribers with no filter at all (operator tools only) */
  private readonly unfiltered = new Map<string, Set<Sub>>();
  private nextId = 1;
  private epoch = 0;
  private count = 0;

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  get size(): number {
    return this.count;
  }

  /**
   * Registers a listener. `tenant` (from the session) is ANDed into the filter
   * unless null (unscoped operator access). `since`: the seq of the caller's snapshot — a batch committed (and
   * so in the snapshot) but not yet durable when it subscribed is not delivered again. Returns an unsubscribe function.
   */
  add(table: string, filter: Filter, tenant: string | null, listener: DeltaListener, since = 0): () => void {
    const entries = compileFilter(filter, tenant);
    const indexEntry = entries.find(([col]) => col !== 'tenant') ?? entries.find(([col]) => col === 'tenant');
    const sub: Sub = {
      id: this.nextId++,
      table,
      filter: entries,
      indexColumn: indexEntry?.[0] ?? null,
      indexValues: indexEntry ? [...indexEntry[1]] : [],
      listener,
      mark: 0,
      since,
    };
    if (sub.indexColumn === null) {
      let set = this.unfiltered.get(table);
      if (!set) this.unfiltered.set(table, (set = new Set()));
      set.add(sub);
    } else {
      let cols = this.index.get(table);
      if (!cols) this.index.set(table, (cols = new Map()));
      let values = cols.get(sub.indexColumn);
      if (!values) cols.set(sub.indexColumn, (values = new Map()));
      for (const v of sub.indexValues) {
        let set = values.get(v);
        if (!set) values.set(v, (set = new Set()));
        set.add(sub);
      }
    }
    this.count++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      this.count--;
      this.remove(sub);
    };
  }

  private remove(sub: Sub): void {
    if (sub.indexColumn === null) {
      this.unfiltered.get(sub.table)?.delete(sub);
      return;
    }
    const values = this.index.get(sub.table)?.get(sub.indexColumn);
    if (!values) return;
    for (const v of sub.indexValues) {
      const set = values.get(v);
      set?.delete(sub);
      if (set && set.size === 0) values.delete(v);
    }
  }

  dispatch(batch: CommittedBatch): void {
    if (this.count === 0) return;
    for (const { seq, changes } of batch.commands) for (const change of changes) this.dispatchChange(seq, change, batch.committedAt);
  }

  private dispatchChange(seq: number, change: RowChange, committedAt: number): void {
    const epoch = ++this.epoch;
    const deliver = (sub: Sub): void => {
      if (sub.mark === epoch || seq <= sub.since) return;
      sub.mark = epoch;
      const delta = deltaFor(sub.filter, seq, change, committedAt);
      if (!delta) return;
      try {
        sub.listener(delta);
      } catch (err) {
        this.onListenerError(err);
      }
    };
    const cols = this.index.get(change.table);
    if (cols) {
      for (const [col, values] of cols) {
        const a = change.old?.[col] as FilterValue | undefined;
        const b = change.new?.[col] as FilterValue | undefined;
        if (a !== undefined) values.get(a)?.forEach(deliver);
        if (b !== undefined && b !== a) values.get(b)?.forEach(deliver);
      }
    }
    this.unfiltered.get(change.table)?.forEach(deliver);
  }
}
