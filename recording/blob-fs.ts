/**
 * Local-filesystem blob store for (encrypted) recordings, under
 * `<dataDir>/recordings/`. URIs are `fs:<key>`.
 *
 * Keys are relative paths of 1–8 segments, each `[A-Za-z0-9_][A-Za-z0-9._-]*`
 * (≤ 128 chars; so never `.`/`..`, never hidden, no backslashes or NULs), and
 * the resolved path must stay under the root — anything else is refused with
 * `INVALID_KEY` before touching the disk.
 *
 * Writes are atomic and durable: data goes to a hidden temp file in the same
 * directory (`.<name>.<random>.tmp`, which no valid key can name), is fsync'd,
 * renamed over the target, and the directory is fsync'd (and every directory
 * created on the way). A reader sees the old blob or the new one, never a
 * part; a failed or interrupted put leaves the old one. `sweepTemp()` removes
 * temp files a crash left behind. A full disk surfaces as `NO_SPACE`.
 *
 * The embedded mode's implementation of store/blob-store.ts (cluster mode uses the JetStream object store,
 * store/jetstream-blobs.ts); `putStream`/`stream` write and read in pieces, `list` walks a key prefix.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, type Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BlobStoreError, blobKeyOf, validateBlobKey, type BlobStore } from '../store/blob-store.ts';

export { BlobStoreError, type BlobStoreErrorCode } from '../store/blob-store.ts';

const TMP = /^\..+\.[0-9a-f]{12}\.tmp$/;

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export class FsBlobStore implements BlobStore {
  readonly scheme = 'fs';
  readonly root: string;

  constructor(dataDir: string) {
    this.root = path.resolve(dataDir, 'recordings');
  }

  /** Returns `key` if valid, else throws INVALID_KEY. */
  validateKey(key: string): string {
    validateBlobKey(key);
    const full = path.resolve(this.root, key);
    if (!full.startsWith(this.root + path.sep)) throw new BlobStoreError('INVALID_KEY', `blob key ${JSON.stringify(key)} escapes the store`);
    return key;
  }

  uriFor(key: string): string {
    return `${this.scheme}:${this.validateKey(key)}`;
  }

  /** The key of an `fs:` uri (validated). */
  keyOf(uri: string): string {
    return this.validateKey(blobKeyOf(this.scheme, uri));
  }

  /** The file behind an `fs:` uri. */
  pathOf(uri: string): string {
    return path.join(this.root, this.keyOf(uri));
  }

  async put(key: string, data: Buffer): Promise<string> {
    return this.write(key, [data], data.length);
  }

  async putStream(key: string, data: AsyncIterable<Uint8Array>): Promise<string> {
    return this.write(key, data);
  }

  /** Writes the pieces to a temp file, fsyncs, renames; `size`: the whole length when known (for the error). */
  private async write(key: string, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size?: number): Promise<string> {
    const final = path.join(this.root, this.validateKey(key));
    const dir = path.dirname(final);
    const tmp = path.join(dir, `.${path.basename(final)}.${randomBytes(6).toString('hex')}.tmp`);
    let written = 0;
    try {
      const created = await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      const h = await fs.open(tmp, 'wx', 0o600);
      try {
        for await (const piece of data) {
          for (let off = 0; off < piece.length; ) {
            const { bytesWritten } = await h.write(piece, off, piece.length - off);
            off += bytesWritten;
            written += bytesWritten;
          }
        }
        await h.sync();
      } finally {
        await h.close();
      }
      await fs.rename(tmp, final);
      await fsyncDir(dir);
      if (created !== undefined) {
        // New directories: make each one's entry in its parent durable too.
        for (let d = dir; d.length >= created.length; d = path.dirname(d)) await fsyncDir(path.dirname(d));
      }
      return `${this.scheme}:${key}`;
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(() => {});
      const code = errno(err);
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        throw new BlobStoreError('NO_SPACE', `no space left on the recordings disk storing ${key} (${size ?? written} bytes) under ${this.root}`, { cause: err });
      }
      throw new BlobStoreError('IO', `storing ${key} under ${this.root} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async get(uri: string): Promise<Buffer> {
    const file = this.pathOf(uri);
    try {
      return await fs.readFile(file);
    } catch (err) {
      throw this.readError(uri, err);
    }
  }

  async *stream(uri: string): AsyncIterable<Buffer> {
    const file = this.pathOf(uri);
    try {
      for await (const piece of createReadStream(file, { highWaterMark: 64 * 1024 })) yield piece as Buffer;
    } catch (err) {
      throw this.readError(uri, err);
    }
  }

  /** The keys under `prefix` (sorted); temp files are not keys. */
  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
        throw err;
      }
      for (const e of entries) {
        if (e.name.startsWith('.')) continue;
        const key = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(path.join(dir, e.name), key);
        } else if (e.isFile() && key.startsWith(prefix)) out.push(key);
      }
    };
    await walk(this.root, '');
    return out.sort();
  }

  /** Blob length in bytes. */
  async size(uri: string): Promise<number> {
    try {
      return (await fs.stat(this.pathOf(uri))).size;
    } catch (err) {
      throw this.readError(uri, err);
    }
  }

  /** Reads bytes [start, end] inclusive; `end` is clamped to the last byte. */
  async getRange(uri: string, start: number, end: number): Promise<Buffer> {
    const file = this.pathOf(uri);
    let h: fs.FileHandle;
    try {
      h = await fs.open(file, 'r');
    } catch (err) {
      throw this.readError(uri, err);
    }
    try {
      const size = (await h.stat()).size;
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || start >= size) {
        throw new RangeError(`range ${start}-${end} is not satisfiable for ${size} bytes`);
      }
      const last = Math.min(end, size - 1);
      const buf = Buffer.alloc(last - start + 1);
      let off = 0;
      while (off < buf.length) {
        const { bytesRead } = await h.read(buf, off, buf.length - off, start + off);
        if (bytesRead === 0) throw new BlobStoreError('IO', `${uri} shrank while being read`);
        off += bytesRead;
      }
      return buf;
    } finally {
      await h.close();
    }
  }

  /** Deletes the blob; deleting a missing blob is not an error. */
  async delete(uri: string): Promise<void> {
    const file = this.pathOf(uri);
    try {
      await fs.unlink(file);
    } catch (err) {
      if (errno(err) === 'ENOENT') return;
      throw new BlobStoreError('IO', `deleting ${uri} failed: ${(err as Error).message}`, { cause: err });
    }
    await fsyncDir(path.dirname(file));
  }

  async exists(uri: string): Promise<boolean> {
    try {
      return (await fs.stat(this.pathOf(uri))).isFile();
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw this.readError(uri, err);
    }
  }

  /** Removes temp files left by interrupted puts; returns how many. */
  async sweepTemp(): Promise<number> {
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errno(err) === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile() && TMP.test(e.name)) {
          await fs.rm(p, { force: true });
          removed++;
        }
      }
    };
    await walk(this.root);
    return removed;
  }

  private readError(uri: string, err: unknown): Error {
    if (err instanceof BlobStoreError || err instanceof RangeError) return err;
    if (errno(err) === 'ENOENT') return new BlobStoreError('NOT_FOUND', `blob ${uri} not found`, { cause: err });
    return new BlobStoreError('IO', `reading ${uri} failed: ${(err as Error).message}`, { cause: err });
  }
}
