/**
 * Retention: purging recording media once `retention_until` has passed.
 *
 * Purging deletes only the media (the blob). The recording row, its sha256,
 * key id, segments/gaps/pauses metadata and the events that describe it stay:
 * `commitPurged` writes `recording_purged` (status `purged`, `purged_at`), so
 * the audit trail still proves what existed and when it was destroyed.
 *
 * Order per row: delete the blob first (idempotent), then commit the purge.
 * A crash in between leaves a row that is still purgeable and a blob that is
 * already gone; the next sweep deletes again (a no-op) and commits. The other
 * order could mark media purged that still exists.
 *
 * Legal hold is re-checked through `refresh` (when given) right before each
 * delete, so a hold placed after `list()` still protects the media; the
 * `recording_purged` reducer should refuse a held row as the final authority.
 */

/** The fields of a `recordings` row retention looks at. */
export interface RetentionRow {
  id: string;
  status: string;
  retention_until: number | null;
  legal_hold: boolean;
}

/** Statuses whose media may be purged (not while recording or finalizing; never twice). */
const PURGEABLE_STATUS = new Set(['finalized', 'failed']);

/** True when `row`'s media is due for purging at `nowMs`. */
export function isPurgeable(row: RetentionRow, nowMs: number): boolean {
  return (
    PURGEABLE_STATUS.has(row.status) &&
    row.retention_until !== null &&
    row.retention_until <= nowMs &&
    !row.legal_hold
  );
}

/**
 * Rows past retention, not on legal hold and not purged (nor still being
 * recorded/finalized), oldest deadline first.
 */
export function selectPurgeable<R extends RetentionRow>(rows: readonly R[], nowMs: number): R[] {
  return rows
    .filter((r) => isPurgeable(r, nowMs))
    .sort((a, b) => (a.retention_until as number) - (b.retention_until as number) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export interface RetentionSweeperOptions<R extends RetentionRow> {
  /** Candidate rows (e.g. status in (finalized, failed) and retention_until <= now). */
  list(): R[] | Promise<R[]>;
  /** Deletes the row's media; must be idempotent. */
  purgeBlob(row: R): void | Promise<void>;
  /** Writes `recording_purged` for the row (status purged, purged_at); the row and its hash stay. */
  commitPurged(row: R): void | Promise<void>;
  /** Re-reads a row just before deleting (catches a legal hold placed meanwhile). */
  refresh?(row: R): R | undefined | Promise<R | undefined>;
  nowMs?: () => number;
  /** Sweep interval (default 60 000 ms). */
  intervalMs?: number;
  /** Rows per sweep at most (default 500). */
  batchSize?: number;
  /** Called for each row that failed; the sweep continues with the next row. */
  onError?(row: R, error: unknown): void;
}

export interface SweepReport {
  purged: string[];
  failed: string[];
  /** Rows skipped because a refresh showed them held or no longer due. */
  skipped: string[];
}

export class RetentionSweeper<R extends RetentionRow> {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepReport> | undefined;
  private readonly nowMs: () => number;

  constructor(private readonly opts: RetentionSweeperOptions<R>) {
    this.nowMs = opts.nowMs ?? Date.now;
  }

  /** Starts sweeping every `intervalMs` on an unref'd timer (does not keep the process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweepOnce().catch(() => {}), this.opts.intervalMs ?? 60_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One sweep; concurrent calls share the sweep in progress. */
  sweepOnce(): Promise<SweepReport> {
    this.running ??= this.sweep().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async sweep(): Promise<SweepReport> {
    const report: SweepReport = { purged: [], failed: [], skipped: [] };
    const due = selectPurgeable(await this.opts.list(), this.nowMs()).slice(0, this.opts.batchSize ?? 500);
    for (const candidate of due) {
      try {
        const row = this.opts.refresh ? await this.opts.refresh(candidate) : candidate;
        if (!row || !isPurgeable(row, this.nowMs())) {
          report.skipped.push(candidate.id);
          continue;
        }
        await this.opts.purgeBlob(row);
        await this.opts.commitPurged(row);
        report.purged.push(row.id);
      } catch (error) {
        report.failed.push(candidate.id);
        try {
          this.opts.onError?.(candidate, error);
        } catch {
          // A failing error hook must not stop the sweep.
        }
      }
    }
    return report;
  }
}
