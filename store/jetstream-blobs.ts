/**
 * Cluster mode's blob store (store/blob-store.ts): a JetStream object store (@nats-io/obj), so every node reads
 * what any node wrote — finalized recordings, the chunks of recordings in progress, agent bundles.
 *
 *   bucket `<log stream>_BLOBS` (the default log stream's + `_BLOBS`; its stream is OBJ_<bucket>), file storage, the log's
 *   replicas: a put is acknowledged once a quorum of the servers holds every chunk, as a log publish is.
 *
 *   put(key)    ─► object `<key>` (sent in 128 KiB messages; the meta message last, so a reader never sees a part)
 *   get/stream  ─► the object's chunks in order, its digest checked by the client
 *   delete      ─► the object's chunks purged, a delete marker left (list and exists no longer see it)
 *
 * Uris are `nats:<key>`. The bucket is created when missing; a cluster still forming is retried for 10 s (as the log
 * and the snapshots streams are: TRANSIENT_SETUP). The NATS connection is the store's (`clusterBlobStore`), so it
 * reconnects with it; with no quorum a put or get fails (`IO`) and the caller decides (a recording chunk is retried
 * with the next one).
 */
import { Objm, StorageType, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/nats-core';
import { BlobStoreError, blobKeyOf, validateBlobKey, type BlobStore } from './blob-store.ts';
import { TRANSIENT_SETUP } from './jetstream-log.ts';

export const blobBucket = (logStream: string): string => `${logStream}_BLOBS`;

function ioError(what: string, err: unknown): BlobStoreError {
  if (err instanceof BlobStoreError) return err;
  return new BlobStoreError('IO', `${what}: ${(err as Error).message}`, { cause: err });
}

export class JetStreamBlobStore implements BlobStore {
  readonly scheme = 'nats';

  private constructor(
    private readonly os: ObjectStore,
    readonly bucket: string,
  ) {}

  /** Opens the bucket, creating it (file storage, `replicas`) when missing. */
  static async open(nc: NatsConnection, bucket: string, replicas: number): Promise<JetStreamBlobStore> {
    const objm = new Objm(nc);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return new JetStreamBlobStore(await objm.create(bucket, { storage: StorageType.File, replicas }), bucket);
      } catch (err) {
        if (!TRANSIENT_SETUP.test((err as Error).message) || Date.now() > deadline) throw ioError(`opening the object store ${bucket}`, err);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  uriFor(key: string): string {
    return `${this.scheme}:${validateBlobKey(key)}`;
  }

  keyOf(uri: string): string {
    return blobKeyOf(this.scheme, uri);
  }

  async put(key: string, data: Buffer): Promise<string> {
    const uri = this.uriFor(key);
    try {
      await this.os.putBlob({ name: key }, data);
    } catch (err) {
      throw ioError(`storing ${key} in ${this.bucket}`, err);
    }
    return uri;
  }

  async putStream(key: string, data: AsyncIterable<Uint8Array>): Promise<string> {
    const uri = this.uriFor(key);
    const it = data[Symbol.asyncIterator]();
    const rs = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await it.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await it.return?.();
      },
    });
    try {
      await this.os.put({ name: key }, rs);
    } catch (err) {
      throw ioError(`storing ${key} in ${this.bucket}`, err);
    }
    return uri;
  }

  async get(uri: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const piece of this.stream(uri)) parts.push(piece);
    return Buffer.concat(parts);
  }

  async *stream(uri: string): AsyncIterable<Buffer> {
    const key = this.keyOf(uri);
    let result;
    try {
      result = await this.os.get(key);
    } catch (err) {
      throw ioError(`reading ${uri}`, err);
    }
    if (!result) throw new BlobStoreError('NOT_FOUND', `blob ${uri} not found`);
    const reader = result.data.getReader();
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        yield Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      }
      finished = true;
    } catch (err) {
      finished = true;
      throw ioError(`reading ${uri}`, err);
    } finally {
      // A reader that stopped early (a range read): the rest of the object is not fetched.
      if (!finished) await reader.cancel().catch(() => undefined);
      reader.releaseLock();
    }
    const failed = await result.error;
    if (failed) throw ioError(`reading ${uri}`, failed);
  }

  /** Streams the object and keeps [start, end]; the object store has no random access. */
  async getRange(uri: string, start: number, end: number): Promise<Buffer> {
    const size = (await this.info(uri)).size;
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || start >= size) {
      throw new RangeError(`range ${start}-${end} is not satisfiable for ${size} bytes`);
    }
    const last = Math.min(end, size - 1);
    const parts: Buffer[] = [];
    let at = 0;
    for await (const piece of this.stream(uri)) {
      const from = Math.max(start - at, 0);
      const to = Math.min(last + 1 - at, piece.length);
      if (to > from) parts.push(piece.subarray(from, to));
      at += piece.length;
      if (at > last) break;
    }
    return Buffer.concat(parts);
  }

  async delete(uri: string): Promise<void> {
    const key = this.keyOf(uri);
    try {
      const info = await this.os.info(key);
      if (!info || info.deleted) return;
      await this.os.delete(key);
    } catch (err) {
      if (/not found/i.test((err as Error).message)) return;
      throw ioError(`deleting ${uri}`, err);
    }
  }

  async exists(uri: string): Promise<boolean> {
    const key = this.keyOf(uri);
    try {
      const info = await this.os.info(key);
      return info !== null && !info.deleted;
    } catch (err) {
      throw ioError(`looking up ${uri}`, err);
    }
  }

  async list(prefix: string): Promise<string[]> {
    try {
      return (await this.os.list())
        .filter((i) => !i.deleted && i.name.startsWith(prefix))
        .map((i) => i.name)
        .sort();
    } catch (err) {
      throw ioError(`listing ${this.bucket}`, err);
    }
  }

  private async info(uri: string): Promise<{ size: number }> {
    const key = this.keyOf(uri);
    let info;
    try {
      info = await this.os.info(key);
    } catch (err) {
      throw ioError(`looking up ${uri}`, err);
    }
    if (!info || info.deleted) throw new BlobStoreError('NOT_FOUND', `blob ${uri} not found`);
    return info;
  }
}
