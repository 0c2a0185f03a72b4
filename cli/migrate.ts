/**
 * `switchboard migrate`: upgrades a data dir written before content sealing (issue 17) so that its calls' content
 * is erasable. A hash-chained log cannot be edited, so the upgrade is a new epoch of the log:
 *
 *   DATA_DIR (old log, plain content) ──relog (store/relog.ts)──► DATA_DIR.migrating-<t>  (keys/ and recordings/
 *        │                                 every command again, same id, tenant,              copied first)
 *        │                                 caller and time; content sealed by the
 *        │                                 submit path under new per-call keys
 *        └─► renamed DATA_DIR.pre-seal-<t> (the old log: plain content — the operator keeps it only as long as the
 *            law requires, then deletes it; erasure cannot reach it)        and DATA_DIR.migrating-<t> ─► DATA_DIR
 *
 * The new log's outcomes must match the old one's, command for command, or nothing is swapped. Afterwards
 * `verify` and `replay` pass on the new log; its hash chain starts afresh (signed by the same node key).
 * `plainContent` counts the events that still carry plain content (the gateway warns at start when there are).
 */
import fs from 'node:fs';
import path from 'node:path';
import { FsBlobStore } from '../recording/blob-fs.ts';
import { isSealed } from '../recording/content-crypto.ts';
import { ContentKeyring } from '../recording/content-keys.ts';
import { ContentSealer } from '../recording/content-seal.ts';
import { loadOrCreateMasterKey } from '../recording/master-key.ts';
import { CONTENT_ARGS, schema, type SwitchboardTables } from '../schema/index.ts';
import { relog, Store, resolveDurability } from '../store/index.ts';

/** The number of events (up to `limit`) whose content fields are not sealed. */
export function plainContent(store: Pick<Store<SwitchboardTables>, 'events'>, limit = Number.MAX_SAFE_INTEGER): number {
  let n = 0;
  for (const ev of store.events()) {
    const spec = CONTENT_ARGS[ev.reducer];
    if (!spec || ev.args === null || typeof ev.args !== 'object') continue;
    const a = ev.args as Record<string, unknown>;
    if (spec.fields.some((f) => a[f] !== undefined && a[f] !== null && !isSealed(a[f]))) n += 1;
    if (n >= limit) break;
  }
  return n;
}

export interface MigrateReport {
  events: number;
  plain: number;
  /** Where the old data dir went (null: nothing to migrate). */
  archive: string | null;
}

/** Migrates the (stopped) gateway's data dir in place; throws without changing it when the new log disagrees. */
export async function migrateDataDir(dataDir: string, now = Date.now()): Promise<MigrateReport> {
  const old = Store.open({ dataDir, schema, checkpointMs: 0 });
  const plain = plainContent(old);
  if (plain === 0) {
    old.close();
    return { events: old.head.seq, plain: 0, archive: null };
  }
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  const target = `${dataDir.replace(/\/+$/, '')}.migrating-${stamp}`;
  const archive = `${dataDir.replace(/\/+$/, '')}.pre-seal-${stamp}`;
  let report;
  try {
    fs.mkdirSync(target, { mode: 0o700 });
    for (const sub of ['keys', 'recordings']) {
      const from = path.join(dataDir, sub);
      if (fs.existsSync(from)) fs.cpSync(from, path.join(target, sub), { recursive: true, preserveTimestamps: true });
    }
    let ts = 0;
    const fresh = Store.open({ dataDir: target, schema, node: old.node, clock: () => ts, checkpointMs: 0, durability: resolveDurability({ fsync: 'periodic' }) });
    try {
      new ContentSealer(fresh, new ContentKeyring(new FsBlobStore(target), loadOrCreateMasterKey(target))).install();
      report = await relog(old, fresh, (t) => (ts = t));
      if (report.mismatches.length > 0) throw new Error(`the new log's outcomes differ from the old one's at seq ${report.mismatches.slice(0, 5).join(', ')}: nothing was changed`);
      const check = fresh.replay();
      if (!check.ok || !fresh.verify().ok) throw new Error('the new log does not verify or replay: nothing was changed');
    } finally {
      fresh.close();
    }
  } catch (err) {
    old.close();
    fs.rmSync(target, { recursive: true, force: true });
    throw err;
  }
  old.close();
  fs.renameSync(dataDir, archive);
  fs.renameSync(target, dataDir);
  fs.writeFileSync(path.join(dataDir, 'keys', 'content-sealed'), `content sealed by switchboard migrate (old log: ${archive})\n`, { mode: 0o600 });
  return { events: report.events, plain, archive };
}
