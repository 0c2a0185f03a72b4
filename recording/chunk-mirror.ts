/**
 * Cluster mode: a recording in progress mirrored to the cluster's object store (store/jetstream-blobs.ts) in chunks,
 * so a node's death loses at most the last chunk, and whichever node resumes or finalizes the recording has the
 * segments another node recorded.
 *
 *   objects of recording R of tenant T (under `work/T/R/`):
 *     seg-NNN.log                    the segment's journal (start, rate, pauses), replaced whenever it grew
 *     seg-NNN.pcm/<byte offset, 12>  encrypted bytes [offset, offset + n) of the segment file, n ≤ `chunkMs` of audio
 *
 *   recording node:  every `chunkMs` (≤ 5 s) ─► SegmentMirror.sync(): the whole stereo frames the recorder flushed
 *                    since the last chunk, encrypted (recording/crypto.ts envelope), one object per ≤ chunkMs;
 *                    the recorder's close ─► a last sync (the segment is whole in the object store)
 *   other node:      resume or finalize ─► restoreWork(): each segment missing from its working dir rebuilt from
 *                    its journal and its chunks, in offset order up to the first missing one
 *
 * Each chunk is its own envelope (a fresh data key wrapped by the master key): the object store never holds audio
 * in clear, as the finalized recording is not. A chunk that fails to upload (no quorum) is retried with the next
 * sync; only what no sync stored before the node died is lost, and the resume records it as a gap. A finalized
 * recording is stored whole (recording/service.ts); its chunks are then deleted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { blobKeySegment, type BlobStore } from '../store/index.ts';
import { decryptRecording, encryptRecording, type MasterKey } from './crypto.ts';
import { BYTES_PER_FRAME, journalFile, type RecordingRate } from './segment-files.ts';

/** Where the chunks of a recording live in the object store (with a trailing `/`). */
export function workPrefix(tenant: string, recordingId: string): string {
  return `work/${blobKeySegment(tenant)}/${blobKeySegment(recordingId)}/`;
}

const OFFSET_DIGITS = 12;

/** Mirrors one recorder's segment (its .pcm and its journal) to the object store. */
export class SegmentMirror {
  private uploaded = 0;
  private journalBytes = 0;
  /** The sync in flight (settled, never rejected): the next one starts after it. */
  private running: Promise<void> = Promise.resolve();
  readonly chunkBytes: number;

  constructor(
    private readonly o: { blobs: BlobStore; master: MasterKey; prefix: string; dir: string; segmentFile: string; sampleRate: RecordingRate; chunkMs: number },
  ) {
    this.chunkBytes = Math.max(BYTES_PER_FRAME, Math.floor((o.sampleRate * o.chunkMs) / 1000) * BYTES_PER_FRAME);
  }

  /** Bytes of the segment stored in the object store so far. */
  get storedBytes(): number {
    return this.uploaded;
  }

  /** Uploads what was flushed since the last sync; one at a time (a sync asked during another waits for it). */
  sync(): Promise<void> {
    const run = this.running.then(() => this.upload());
    this.running = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async upload(): Promise<void> {
    const { dir, segmentFile, blobs, master, prefix } = this.o;
    const journal = journalFile(Number(/(\d+)/.exec(segmentFile)?.[1] ?? 0));
    const log = readIfExists(path.join(dir, journal));
    if (log && log.length > this.journalBytes) {
      await blobs.put(`${prefix}${journal}`, encryptRecording(log, master));
      this.journalBytes = log.length;
    }
    let size: number;
    try {
      size = fs.statSync(path.join(dir, segmentFile)).size;
    } catch {
      return;
    }
    const end = size - (size % BYTES_PER_FRAME);
    if (end <= this.uploaded) return;
    const fd = fs.openSync(path.join(dir, segmentFile), 'r');
    try {
      while (this.uploaded < end) {
        const n = Math.min(this.chunkBytes, end - this.uploaded);
        const buf = Buffer.alloc(n);
        const got = fs.readSync(fd, buf, 0, n, this.uploaded);
        if (got !== n) throw new Error(`segment ${segmentFile}: short read at byte ${this.uploaded}`);
        await blobs.put(`${prefix}${segmentFile}/${String(this.uploaded).padStart(OFFSET_DIGITS, '0')}`, encryptRecording(buf, master));
        this.uploaded += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

function readIfExists(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

export interface RestoreReport {
  /** Segment files written into the working directory, with their bytes. */
  restored: Array<{ file: string; bytes: number }>;
  /** Chunks after a missing one (not used: the segment ends at the hole). */
  skippedChunks: number;
}

/**
 * Writes into `dir` every segment (and journal) the object store holds under `prefix` that `dir` lacks. A segment is
 * its chunks in offset order up to the first missing one. Segments already in `dir` are this node's own: kept.
 */
export async function restoreWork(blobs: BlobStore, master: MasterKey, prefix: string, dir: string): Promise<RestoreReport> {
  const report: RestoreReport = { restored: [], skippedChunks: 0 };
  const keys = await blobs.list(prefix);
  if (keys.length === 0) return report;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const chunks = new Map<string, Array<{ offset: number; key: string }>>();
  for (const key of keys) {
    const rest = key.slice(prefix.length);
    const m = /^(seg-\d+\.pcm)\/(\d+)$/.exec(rest);
    if (m) {
      const list = chunks.get(m[1]!) ?? [];
      list.push({ offset: Number(m[2]), key });
      chunks.set(m[1]!, list);
    } else if (/^seg-\d+\.log$/.test(rest) && !fs.existsSync(path.join(dir, rest))) {
      fs.writeFileSync(path.join(dir, rest), decryptRecording(await blobs.get(blobs.uriFor(key)), master), { mode: 0o600 });
    }
  }
  for (const [file, list] of chunks) {
    const target = path.join(dir, file);
    if (fs.existsSync(target)) continue;
    list.sort((a, b) => a.offset - b.offset);
    const parts: Buffer[] = [];
    let at = 0;
    for (const [i, c] of list.entries()) {
      if (c.offset !== at) {
        report.skippedChunks += list.length - i;
        break;
      }
      const plain = decryptRecording(await blobs.get(blobs.uriFor(c.key)), master);
      parts.push(plain);
      at += plain.length;
    }
    fs.writeFileSync(target, Buffer.concat(parts), { mode: 0o600 });
    report.restored.push({ file, bytes: at });
  }
  return report;
}

/** Deletes a recording's chunks from the object store (after finalize, or when it is purged). */
export async function deleteWork(blobs: BlobStore, prefix: string): Promise<number> {
  const keys = await blobs.list(prefix);
  for (const key of keys) await blobs.delete(blobs.uriFor(key));
  return keys.length;
}
