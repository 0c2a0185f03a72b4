/**
 * Re-logging: every command of one store's log submitted again, in order, to another (empty) store under its
 * original id, tenant, caller and time — for an upgrade that must change what commands carry (sealing content,
 * cli/migrate.ts) without editing a hash-chained log in place. The target's submit path (its sealer) transforms
 * the args; reducers are deterministic, so the target's tables and outcomes follow from the same commands.
 *
 *   from.events() ──► setTime(ev.ts) ──► to.submitNamed(ev.reducer, ev.args, {tenant, caller, id}) ──► receipt
 *                                                  └─ outcome ok/refused must match the recorded one
 */
import type { Store } from './store.ts';
import type { Tables } from './reducer.ts';

export interface RelogReport {
  events: number;
  /** Seqs whose outcome in the target differs (ok vs refused) from the recorded one. */
  mismatches: number[];
}

/** `setTime` sets the clock the target store was opened with (its `clock` option) to each command's time. */
export async function relog<T extends Tables>(from: Store<T>, to: Store<T>, setTime: (ts: number) => void): Promise<RelogReport> {
  const report: RelogReport = { events: 0, mismatches: [] };
  for (const ev of from.events()) {
    setTime(ev.ts);
    const r = await to.submitNamed(ev.reducer, ev.args, { tenant: ev.tenant, caller: ev.caller, id: ev.id });
    report.events += 1;
    if (r.outcome.ok !== ev.outcome.ok) report.mismatches.push(ev.seq);
  }
  return report;
}
