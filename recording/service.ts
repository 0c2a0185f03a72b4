/**
 * The recording service: the store-facing side of recording. It begins a
 * call's recording (`recording_started`, or a new segment + gap after a
 * resume), hands the session a recorder tap, and finalizes when the call has
 * ended — whoever ended it (agent hangup, provider status, BYE) and even after
 * a restart: it watches `calls` for `ended` (the one route by which it learns
 * of a call's end) and sweeps unfinished recordings at boot. Finalize = timeline → WAV (or Ogg/MP3) → sha256 → envelope
 * encryption → blob store → `recording_finalized`. Any failure is a
 * `recording_failed` row with the reason; the call itself never notices.
 *
 * Cluster mode (`cluster`): the blob store is the cluster's object store. While a call records, its segment is
 * mirrored there every `chunkMs` (≤ 5 s; recording/chunk-mirror.ts), so a node that resumes the call (a new segment,
 * the gap from the end of the last stored chunk) or finalizes it has what a dead node recorded. One node finalizes
 * an ended call (recording/finalizer.ts): its owner, or — the owner lost or stopped — the first alive node by id,
 * also when the loss is learnt after the end. The finalized recording is put whole (encrypted, as in embedded mode):
 * the download path, Range decryption and sha256 are the same on every node; the chunks are then deleted. Purging
 * deletes the recording and any chunks left (a failed recording's).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { RecordingHandle, RecordingPort } from '../bridge/recording-port.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import { blobKeySegment, type Store } from '../store/index.ts';
import { deleteWork, restoreWork, SegmentMirror, workPrefix } from './chunk-mirror.ts';
import { encryptRecording, type MasterKey } from './crypto.ts';
import { finalize } from './finalize.ts';
import { finalizesHere } from './finalizer.ts';
import { Recorder } from './recorder.ts';
import { RetentionSweeper } from './retention.ts';
import { recordingRateFor } from './segment-files.ts';
import { previousMediaNode } from './gap-node.ts';
import { resumeGap, scanSegments } from './segments.ts';
import type { BlobStore, Interval, RecordingFormat } from './types.ts';
import { recording_failed, recording_finalized, recording_paused, recording_purged, recording_segment_started, recording_started } from '../schema/reducers.ts';

export interface RecordingServiceOptions {
  store: Store<SwitchboardTables>;
  dataDir: string;
  blobs: BlobStore;
  master: MasterKey;
  logger: Logger;
  /** Overrides every policy's recording_format (operators, tests). */
  format?: RecordingFormat;
  ffmpegPath?: string;
  retentionSweepMs?: number;
  /** Cluster mode: segments mirrored to the (shared) blob store in chunks; one node finalizes a call. */
  cluster?: boolean;
  /** Cluster mode: the longest stretch of audio a chunk holds, and how often one is stored (default 5000 ms). */
  chunkMs?: number;
}

interface Active {
  recorder: Recorder;
  mirror: SegmentMirror | null;
  closed: Promise<void>;
  markClosed: () => void;
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

export class RecordingService implements RecordingPort {
  private readonly active = new Map<string, Active>();
  private readonly finalizing = new Map<string, Promise<void>>();
  private unsubscribe: (() => void) | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private mirrorTicker: NodeJS.Timeout | null = null;
  private sweeper: RetentionSweeper<{ id: string; tenant: string; status: string; uri: string | null; retention_until: number | null; legal_hold: boolean }> | null = null;
  private readonly log: Logger;

  constructor(private readonly o: RecordingServiceOptions) {
    this.log = o.logger.child({ component: 'recording' });
  }

  private workDir(recordingId: string): string {
    return path.join(this.o.dataDir, 'recordings-work', recordingId);
  }

  /**
   * The store cannot write (disk full): every live recording stops now and is marked failed with `reason` (the
   * `recording_failed` commands wait in the store's queue and commit when it recovers); the calls go on unrecorded.
   */
  abortAll(reason: string): void {
    for (const a of this.active.values()) a.recorder.abort(reason);
  }

  /**
   * Removes what no recording owns in `recordings-work/` — a directory without a live or failed recording row
   * (finalized, purged, or never committed), and encoder temp dirs (`.encode-*`) a crash left — and the blob
   * store's interrupted temp files. Failed recordings keep what they flushed until retention purges it.
   */
  private sweepStrayWork(): void {
    const root = path.join(this.o.dataDir, 'recordings-work');
    let names: string[];
    try {
      names = fs.readdirSync(root);
    } catch {
      return;
    }
    const removed: string[] = [];
    const keep = new Set(this.o.store.read(null).recordings.find({ status: ['recording', 'paused', 'finalizing', 'failed'] }).map((r) => r.id));
    for (const name of names) {
      const dir = path.join(root, name);
      if (!keep.has(name)) {
        fs.rmSync(dir, { recursive: true, force: true });
        removed.push(name);
        continue;
      }
      for (const inner of safeList(dir)) {
        if (inner.startsWith('.encode-')) {
          fs.rmSync(path.join(dir, inner), { recursive: true, force: true });
          removed.push(`${name}/${inner}`);
        }
      }
    }
    if (removed.length) this.log.warn({ removed }, 'removed stray recording working directories left by an interrupted run');
    void this.o.blobs.sweepTemp?.().then(
      (n) => n > 0 && this.log.warn({ files: n }, 'removed interrupted recording blob writes'),
      (err: unknown) => this.log.warn({ err }, 'sweeping interrupted blob writes failed'),
    );
  }

  /** Watches for ended calls, finalizes what a crash left unfinished, starts the retention sweeper. */
  start(): void {
    const { store } = this.o;
    this.sweepStrayWork();
    this.unsubscribe = store.subscribe('calls', { state: 'ended' }, null, (d) => {
      if (d.op !== 'insert' || !d.new) return; // entered `ended`
      this.finalizeCall(String(d.new.tenant), String(d.new.id));
    }).unsubscribe;
    this.finalizeEnded();
    if (this.o.cluster) {
      // A call that ended while its owner was still counted alive, the owner then lost or stopped: finalized here
      // if this node is now the one to (finalizesHere).
      const nodes = store.subscribe('nodes', {}, null, (d) => {
        const state = d.new?.state;
        if ((state === 'lost' || state === 'stopped') && d.old?.state !== state) this.finalizeEnded();
      }).unsubscribe;
      const calls = this.unsubscribe;
      this.unsubscribe = () => {
        calls?.();
        nodes();
      };
    }
    this.sweeper = new RetentionSweeper({
      list: () => store.read(null).recordings.find({ status: ['finalized', 'failed'] }),
      refresh: (row) => store.read(row.tenant).recordings.get(row.id),
      purgeBlob: async (row) => {
        if (row.uri) await this.o.blobs.delete(row.uri);
        if (this.o.cluster) await deleteWork(this.o.blobs, workPrefix(row.tenant, row.id));
        fs.rmSync(this.workDir(row.id), { recursive: true, force: true });
      },
      commitPurged: async (row) => {
        const r = await store.submit(recording_purged, { recording_id: row.id }, { tenant: row.tenant, caller: 'system:retention' });
        if (!r.outcome.ok) throw new Error(`${r.outcome.error.code}: ${r.outcome.error.message}`);
      },
      intervalMs: this.o.retentionSweepMs ?? 60_000,
      onError: (row, err) => this.log.warn({ recording: row.id, err }, 'retention purge failed'),
    });
    this.sweeper.start();
  }

  /** Deletes a recording's media wherever it is (blob, cluster chunks, local work files): erasure (bridge/content-erase.ts). */
  async deleteMedia(row: { tenant: string; id: string; uri: string | null }): Promise<void> {
    if (row.uri) await this.o.blobs.delete(row.uri);
    if (this.o.cluster) await deleteWork(this.o.blobs, workPrefix(row.tenant, row.id));
    fs.rmSync(this.workDir(row.id), { recursive: true, force: true });
  }

  /** Finalizes the unfinished recordings of ended calls (a crash or a lost node left them). */
  private finalizeEnded(): void {
    const { store } = this.o;
    for (const rec of store.read(null).recordings.find({ status: ['recording', 'paused', 'finalizing'] })) {
      const call = store.read(rec.tenant).calls.get(rec.call_id);
      if (call?.state === 'ended') this.finalizeCall(rec.tenant, rec.call_id);
    }
  }

  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    if (this.mirrorTicker) clearInterval(this.mirrorTicker);
    this.mirrorTicker = null;
    this.unsubscribe?.();
    this.sweeper?.stop();
  }

  get retention(): RetentionSweeper<{ id: string; tenant: string; status: string; uri: string | null; retention_until: number | null; legal_hold: boolean }> | null {
    return this.sweeper;
  }

  async begin(ref: { tenant: string; callId: string; answeredAt: number; sampleRate?: number }): Promise<RecordingHandle | null> {
    const { store } = this.o;
    const who = { tenant: ref.tenant, caller: 'recording' };
    const started = await store.submit(recording_started, { call_id: ref.callId, channels: 2, format: this.o.format ?? null }, who);
    if (!started.outcome.ok) {
      this.log.warn({ call: ref.callId, outcome: started.outcome }, 'recording refused');
      return null;
    }
    const { recording_id: recordingId, existing } = started.outcome.result;
    const dir = this.workDir(recordingId);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (existing && this.o.cluster) await this.restore(ref.tenant, recordingId, dir);
    const scan = scanSegments(dir);
    const nowMs = (): number => Date.now() - ref.answeredAt;
    if (existing) {
      const gap = resumeGap(scan.segments, nowMs());
      // A failover: the gap is the audio lost with the node that carried the media before (named in the row).
      const lost = gap ? previousMediaNode(store, ref.tenant, ref.callId) : null;
      await store.submit(
        recording_segment_started,
        { recording_id: recordingId, index: scan.nextIndex, gap: gap ? { start_ms: Math.round(gap.startMs), end_ms: Math.round(gap.endMs), ...(lost ? { node: lost } : {}) } : null },
        who,
      );
    }
    // 400 ms tolerances: a stall of the caller's stream (network, loaded peer or event loop) is
    // waited out rather than filled — filling with silence, or letting agent frames drive the
    // timeline, and then writing the late caller frames too would put the audio ahead of the
    // call clock by the stall. Real holes (> 400 ms) are filled; close() catches up exactly.
    // One rate per recording, chosen from the leg that started it (16 kHz legs are kept wideband);
    // a resumed recording continues at the rate its segments already have.
    const sampleRate = scan.sampleRate ?? recordingRateFor(ref.sampleRate);
    const recorder = new Recorder({ dir, startedAtMs: ref.answeredAt, nowMs: Date.now, segmentIndex: scan.nextIndex, name: recordingId, sampleRate, maxLagMs: 400, callerStallMs: 400, maxAgentBacklogMs: 600, autoTick: false });
    const row = store.read(ref.tenant).recordings.get(recordingId);
    const policyMode = this.pauseMode(ref.tenant, ref.callId);
    if (row?.status === 'paused') recorder.pause('paused before resume', policyMode);
    recorder.onFailure((f) => {
      this.log.error({ recording: recordingId, reason: f.reason }, 'recording failed; the call continues unrecorded');
      void store.submit(recording_failed, { recording_id: recordingId, reason: f.reason.slice(0, 1000) }, who).catch(() => undefined);
    });
    let markClosed = (): void => {};
    const closed = new Promise<void>((r) => (markClosed = r));
    const mirror = this.o.cluster
      ? new SegmentMirror({ blobs: this.o.blobs, master: this.o.master, prefix: workPrefix(ref.tenant, recordingId), dir, segmentFile: recorder.segmentFile, sampleRate, chunkMs: this.chunkMs })
      : null;
    const active: Active = { recorder, mirror, closed, markClosed };
    this.active.set(recordingId, active);
    this.ensureTicker();
    if (mirror) this.ensureMirrorTicker();
    this.log.info({ recording: recordingId, call: ref.callId, segment: scan.nextIndex, resumed: existing, sampleRate }, 'recording');
    return {
      recordingId,
      tap: recorder,
      pause: async (reason) => {
        recorder.pause(reason, policyMode);
        const current = store.read(ref.tenant).recordings.get(recordingId);
        if (current?.status === 'recording') {
          await store.submit(recording_paused, { recording_id: recordingId, at_ms: Math.round(nowMs()), reason, mode: policyMode }, who);
        }
      },
      pauseMedia: (reason) => recorder.pause(reason, policyMode),
      resumeMedia: () => recorder.resume(),
      finish: async () => {
        if (this.active.get(recordingId) === active) this.active.delete(recordingId);
        try {
          recorder.close();
          await recorder.whenDurable(); // the segment's fsync ran on the thread pool, not the media loop
          // The segment whole in the object store: a node that finalizes or resumes the call has all of it.
          await mirror?.sync().catch((err: unknown) => this.log.warn({ recording: recordingId, err }, 'storing the last recording chunk failed'));
        } finally {
          markClosed(); // a finalize waiting for this segment (the call ended first) goes on
        }
      },
    };
  }

  /**
   * One timer for every live recorder (flush write-through, fill real holes), not one per call;
   * it stops when no recording is live.
   */
  private ensureTicker(): void {
    if (this.ticker) return;
    this.ticker = setInterval(() => {
      if (this.active.size === 0) {
        clearInterval(this.ticker!);
        this.ticker = null;
        return;
      }
      const now = Date.now();
      for (const a of this.active.values()) a.recorder.tick(now);
    }, 50);
    this.ticker.unref();
  }

  private get chunkMs(): number {
    return Math.min(this.o.chunkMs ?? 5000, 5000);
  }

  /** One timer stores a chunk of every live recording each `chunkMs` (cluster mode); it stops when none is live. */
  private ensureMirrorTicker(): void {
    if (this.mirrorTicker) return;
    this.mirrorTicker = setInterval(() => {
      const mirrors = [...this.active.entries()].filter(([, a]) => a.mirror);
      if (mirrors.length === 0) {
        clearInterval(this.mirrorTicker!);
        this.mirrorTicker = null;
        return;
      }
      for (const [id, a] of mirrors) {
        a.mirror!.sync().catch((err: unknown) => this.log.warn({ recording: id, err }, 'storing a recording chunk failed; retried with the next one'));
      }
    }, this.chunkMs);
    this.mirrorTicker.unref();
  }

  /** Cluster mode: the segments other nodes stored for this recording, written into its working directory. */
  private async restore(tenant: string, recordingId: string, dir: string): Promise<void> {
    const r = await restoreWork(this.o.blobs, this.o.master, workPrefix(tenant, recordingId), dir);
    if (r.restored.length > 0) this.log.info({ recording: recordingId, restored: r.restored, skippedChunks: r.skippedChunks }, 'recording segments restored from the object store');
  }

  private finalizesHere(tenant: string, callId: string): boolean {
    return !this.o.cluster || finalizesHere(this.o.store, tenant, callId, (id) => fs.existsSync(this.workDir(id)));
  }

  private pauseMode(tenant: string, callId: string): 'silence' | 'skip' {
    const read = this.o.store.read(tenant);
    const consentId = read.calls.get(callId)?.consent_id;
    const policyId = consentId ? read.consents.get(consentId)?.policy_id : undefined;
    return (policyId ? read.consent_policies.get(policyId)?.pause_mode : undefined) ?? 'silence';
  }

  /** Finalizes every unfinished recording of an ended call (once each). */
  finalizeCall(tenant: string, callId: string): void {
    if (!this.finalizesHere(tenant, callId)) return;
    for (const rec of this.o.store.read(tenant).recordings.find({ call_id: callId, status: ['recording', 'paused', 'finalizing'] })) {
      if (this.finalizing.has(rec.id)) continue;
      const job = this.finalizeOne(tenant, rec.id).finally(() => this.finalizing.delete(rec.id));
      this.finalizing.set(rec.id, job);
    }
  }

  /** Resolves when every finalize in flight is done (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.finalizing.size > 0) await Promise.allSettled([...this.finalizing.values()]);
  }

  private async finalizeOne(tenant: string, recordingId: string): Promise<void> {
    const { store } = this.o;
    const who = { tenant, caller: 'recording' };
    const active = this.active.get(recordingId);
    if (active) await Promise.race([active.closed, new Promise((r) => setTimeout(r, 5000))]);
    const row = store.read(tenant).recordings.get(recordingId);
    if (!row) return;
    const dir = this.workDir(recordingId);
    try {
      if (this.o.cluster) await this.restore(tenant, recordingId, dir);
      const scan = scanSegments(dir);
      const gaps: Interval[] = row.gaps.map((g) => ({ startMs: Number(g.start_ms), endMs: Number(g.end_ms) }));
      const result = await finalize({ dir, segments: scan.segments, gaps, pauses: scan.pauses, format: (row.format as RecordingFormat) ?? 'wav', ffmpegPath: this.o.ffmpegPath, sampleRate: scan.sampleRate });
      if (result.warning) this.log.warn({ recording: recordingId, warning: result.warning }, 'recording kept as WAV');
      const blob = encryptRecording(result.data, this.o.master);
      const by = this.o.cluster ? `.${blobKeySegment(store.node)}` : '';
      const uri = await this.o.blobs.put(`${tenant}/${recordingId}${by}.${result.format}.sbrec`, blob);
      const r = await store.submit(
        recording_finalized,
        {
          recording_id: recordingId,
          uri,
          bytes: result.data.length,
          sha256: result.sha256,
          key_id: this.o.master.keyId,
          format: result.format,
          duration_ms: Math.round(result.durationMs),
          // The rate is stored with each segment: the recording row has no column of its own for it.
          segments: scan.segments.map((s) => ({ file: s.file, start_ms: Math.round(s.startMs), duration_ms: Math.round(s.durationMs), bytes: s.bytes, skipped_ms: Math.round(s.skippedMs ?? 0), sample_rate: result.sampleRate })),
          // A gap keeps the node it names (a failover's lost node).
          gaps: gaps.map((g, i) => ({ start_ms: Math.round(g.startMs), end_ms: Math.round(g.endMs), ...(typeof row.gaps[i]?.node === 'string' ? { node: row.gaps[i]!.node } : {}) })),
          pauses: scan.pauses.map((p) => ({ start_ms: Math.round(p.startMs), end_ms: Math.round(p.endMs), reason: p.reason, mode: p.mode })),
        },
        who,
      );
      if (!r.outcome.ok) {
        if (this.o.cluster && r.outcome.error.code === 'recording_closed') {
          // Another node finalized it first: its blob is the recording's; this one goes.
          await this.o.blobs.delete(uri).catch(() => undefined);
          return;
        }
        throw new Error(`${r.outcome.error.code}: ${r.outcome.error.message}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      if (this.o.cluster) {
        await deleteWork(this.o.blobs, workPrefix(tenant, recordingId)).catch((err: unknown) => this.log.warn({ recording: recordingId, err }, 'deleting the finalized recording\'s chunks failed (retention purges them)'));
      }
      this.log.info({ recording: recordingId, bytes: result.data.length, durationMs: result.durationMs, format: result.format, sampleRate: result.sampleRate }, 'recording finalized');
    } catch (err) {
      const reason = `finalize failed: ${(err as Error).message}`.slice(0, 1000);
      this.log.error({ recording: recordingId, err }, 'recording finalize failed');
      await store.submit(recording_failed, { recording_id: recordingId, reason }, who).catch(() => undefined);
    }
  }
}
