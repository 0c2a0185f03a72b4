/**
 * Retention: which rows are purgeable (past retention, not on legal hold, not
 * purged, not in progress), and the sweeper's order (blob first, then the
 * commit), hold re-check, error isolation, no overlapping sweeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetentionSweeper, selectPurgeable, type RetentionRow } from '../../../recording/retention.ts';

const NOW = 1_700_000_000_000;

function row(id: string, over: Partial<RetentionRow> = {}): RetentionRow {
  return { id, status: 'finalized', retention_until: NOW - 1000, legal_hold: false, ...over };
}

test('selectPurgeable: past retention, not held, not purged, not in progress; oldest first', () => {
  const rows = [
    row('due-late', { retention_until: NOW - 10 }),
    row('due-early', { retention_until: NOW - 5000 }),
    row('due-now', { retention_until: NOW }),
    row('held', { legal_hold: true }),
    row('future', { retention_until: NOW + 1 }),
    row('forever', { retention_until: null }),
    row('purged', { status: 'purged' }),
    row('failed', { status: 'failed' }),
    row('recording', { status: 'recording' }),
    row('paused', { status: 'paused' }),
    row('finalizing', { status: 'finalizing' }),
  ];
  assert.deepEqual(selectPurgeable(rows, NOW).map((r) => r.id), ['due-early', 'failed', 'due-late', 'due-now']);
  assert.deepEqual(selectPurgeable(rows, NOW - 20_000), []);
  const held = rows.map((r) => ({ ...r, legal_hold: true }));
  assert.deepEqual(selectPurgeable(held, NOW + 1e12), [], 'legal hold beats any retention date');
});

test('sweeper deletes the blob, then commits; skips rows held meanwhile; one failure does not stop the rest', async () => {
  const log: string[] = [];
  const rows = [row('a', { retention_until: NOW - 3 }), row('b', { retention_until: NOW - 2 }), row('c', { retention_until: NOW - 1 }), row('held', { legal_hold: true })];
  const errors: string[] = [];
  const sweeper = new RetentionSweeper({
    list: async () => rows,
    refresh: (r) => (r.id === 'b' ? { ...r, legal_hold: true } : r), // hold placed after list()
    purgeBlob: (r) => {
      if (r.id === 'c') throw new Error('disk gone');
      log.push(`blob ${r.id}`);
    },
    commitPurged: async (r) => void log.push(`commit ${r.id}`),
    nowMs: () => NOW,
    onError: (r, e) => errors.push(`${r.id}: ${(e as Error).message}`),
  });
  const report = await sweeper.sweepOnce();
  assert.deepEqual(report, { purged: ['a'], failed: ['c'], skipped: ['b'] });
  assert.deepEqual(log, ['blob a', 'commit a']);
  assert.deepEqual(errors, ['c: disk gone']);
});

test('sweeps do not overlap and the timer does not keep the process alive', async (t) => {
  let lists = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const sweeper = new RetentionSweeper({
    list: async () => {
      lists++;
      await gate;
      return [row('a')];
    },
    purgeBlob: () => {},
    commitPurged: () => {},
    nowMs: () => NOW,
    intervalMs: 5,
  });
  const p1 = sweeper.sweepOnce();
  const p2 = sweeper.sweepOnce();
  assert.equal(p1, p2);
  release();
  assert.deepEqual((await p1).purged, ['a']);
  assert.equal(lists, 1);
  sweeper.start();
  t.after(() => sweeper.stop());
  const deadline = Date.now() + 10_000;
  while (lists < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  sweeper.stop();
  assert.ok(lists > 1, 'the interval ran');
});
