/**
 * The blob-store interface: opaque blobs (encrypted recordings, recording chunks, agent bundles) by key, outside the
 * log (ARCHITECTURE §1.3: audio never enters the log; the log holds a blob's uri and sha256). Two implementations,
 * chosen by the mode the node runs in:
 *
 *   embedded ─► recording/blob-fs.ts        FsBlobStore           `fs:<key>`   files under <dataDir>/recordings/
 *   cluster  ─► store/jetstream-blobs.ts    JetStreamBlobStore    `nats:<key>` a JetStream object store, every node
 *
 * A key is 1–8 `/`-separated segments of `[A-Za-z0-9_][A-Za-z0-9._-]*` (≤ 128 chars each, ≤ 512 in all): never
 * `.`/`..`, never hidden, so a key is a safe relative path on disk and the same name in a bucket. A blob's uri is
 * `<scheme>:<key>`; a uri of another scheme is refused (`INVALID_URI`), so a row written by one backend is never read
 * as a path of another. Both implementations pass the shared suite in test/unit/store/blob-store-suite.ts.
 */

export type BlobStoreErrorCode = 'INVALID_KEY' | 'INVALID_URI' | 'NOT_FOUND' | 'NO_SPACE' | 'IO';

export class BlobStoreError extends Error {
  constructor(
    readonly code: BlobStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BlobStoreError';
  }
}

/** Stores opaque blobs by key. Writes are whole: a reader sees the old blob or the new one, never a part. */
export interface BlobStore {
  readonly scheme: string;
  /** The uri of `key` (validated). */
  uriFor(key: string): string;
  /** The key of a uri of this store (validated). */
  keyOf(uri: string): string;
  /** Stores `data` under `key` (replacing a blob there); returns its uri. */
  put(key: string, data: Buffer): Promise<string>;
  /** Stores the bytes `data` yields under `key`, without holding them all (replacing a blob there); returns its uri. */
  putStream(key: string, data: AsyncIterable<Uint8Array>): Promise<string>;
  get(uri: string): Promise<Buffer>;
  /** The blob's bytes in pieces, for large blobs (NOT_FOUND is thrown by the first read). */
  stream(uri: string): AsyncIterable<Buffer>;
  /** Reads [start, end] inclusive, for HTTP Range; `end` is clamped to the last byte. */
  getRange?(uri: string, start: number, end: number): Promise<Buffer>;
  /** Deletes the blob; deleting a missing blob is not an error. */
  delete(uri: string): Promise<void>;
  exists(uri: string): Promise<boolean>;
  /** The keys that start with `prefix` (sorted). */
  list(prefix: string): Promise<string[]>;
  /** Removes temp files an interrupted put left; returns how many. */
  sweepTemp?(): Promise<number>;
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Returns `key` if it is a valid blob key, else throws INVALID_KEY. */
export function validateBlobKey(key: string): string {
  const parts = typeof key === 'string' ? key.split('/') : [];
  const ok = typeof key === 'string' && key.length > 0 && key.length <= 512 && parts.length <= 8 && parts.every((p) => SEGMENT.test(p));
  if (!ok) throw new BlobStoreError('INVALID_KEY', `invalid blob key ${JSON.stringify(key)}: use 1-8 '/'-separated [A-Za-z0-9_][A-Za-z0-9._-]* segments`);
  return key;
}

/** The key of `uri` when it is `<scheme>:<key>`, else INVALID_URI (or INVALID_KEY). */
export function blobKeyOf(scheme: string, uri: string): string {
  if (typeof uri !== 'string' || !uri.startsWith(`${scheme}:`)) {
    throw new BlobStoreError('INVALID_URI', `not an ${scheme}: blob uri: ${JSON.stringify(uri)}`);
  }
  return validateBlobKey(uri.slice(scheme.length + 1));
}

/** A blob key segment made from any text (a node id, a tenant): disallowed characters become `_`. */
export function blobKeySegment(text: string): string {
  const s = text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 128);
  return /^[A-Za-z0-9_]/.test(s) ? s : `_${s.slice(0, 127)}`;
}
