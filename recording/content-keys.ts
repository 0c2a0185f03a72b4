/**
 * The content keyring (issue 17): one random AES-256 key per call, wrapped (AES-256-GCM) by the master key
 * (recording/master-key.ts), kept OUTSIDE the hash-chained log so that it can really be deleted.
 *
 * Where: the node's blob store (store/blob-store.ts), under `content-keys/<tenant>/<call>`. Embedded, that is the
 * data dir's file blob store (recording/blob-fs.ts: a file per key, deleted by unlink); in cluster mode it is the
 * JetStream object store the nodes share (store/jetstream-blobs.ts: delete purges the object's chunks on every
 * replica), so every node opens the same call's content and an erasure on one node holds on all.
 *
 *   getOrCreate(call) ──► cache ─┬─ hit ──► key
 *                                └─ miss ─► blob `content-keys/t/c` ─┬─ present: unwrap
 *                                                                    ├─ tombstone `….erased`: content_key_destroyed
 *                                                                    └─ absent: new key, wrap, put
 *   destroy(call) ──► put tombstone {keyId, at} ─► delete the key blob ─► drop from cache ─► keyId
 *
 * A destroyed key is never made again for the same call (the tombstone): content submitted after erasure is
 * refused rather than sealed under a new key. `cached()` serves the synchronous full-text indexer (schema/search.ts
 * via store option `indexText`): the node that sealed a segment has its key in memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { openAead, sealAead } from './aead.ts';
import { BlobStoreError, blobKeySegment, type BlobStore } from '../store/index.ts';
import { ContentSealError } from './content-crypto.ts';
import type { MasterKey } from './master-key.ts';

export interface ContentKey {
  /** A random id naming this key in `call_content_erased` (reveals nothing about the key). */
  readonly keyId: string;
  readonly key: Buffer;
}

export interface CallKeyRef {
  tenant: string;
  callId: string;
}

interface WrappedKey {
  v: 1;
  keyId: string;
  masterKeyId: string;
  /** base64 of recording/aead.ts sealAead: iv(12) ‖ ciphertext(32) ‖ tag(16) */
  wrapped: string;
}

const PREFIX = 'content-keys';

function blobKey(ref: CallKeyRef, suffix = ''): string {
  // Call ids are short ids; a hash keeps any id a valid key segment of bounded length.
  const call = createHash('sha256').update(ref.callId).digest('hex').slice(0, 40);
  return `${PREFIX}/${blobKeySegment(ref.tenant)}/${call}${suffix}`;
}

function wrapAad(master: MasterKey, keyId: string): string {
  return `SBCK1 content key|${master.keyId}|${keyId}`;
}

export class ContentKeyring {
  private readonly cache = new Map<string, ContentKey>();
  private readonly pending = new Map<string, Promise<ContentKey>>();
  private readonly byCall = new Map<string, ContentKey>();

  constructor(
    private readonly blobs: BlobStore,
    private readonly master: MasterKey,
  ) {}

  private static id(ref: CallKeyRef): string {
    return `${ref.tenant}\u0000${ref.callId}`;
  }

  /** The key when this node holds it in memory (no I/O). */
  cached(ref: CallKeyRef): ContentKey | undefined {
    return this.cache.get(ContentKeyring.id(ref));
  }

  /** The key of a call by its id alone (call ids are unique across tenants), when held in memory. */
  cachedByCall(callId: string): ContentKey | undefined {
    return this.byCall.get(callId);
  }

  /** The call's key, or null when the call has none (never had content, or it was destroyed). */
  async get(ref: CallKeyRef): Promise<ContentKey | null> {
    const hit = this.cached(ref);
    if (hit) return hit;
    const bytes = await this.read(blobKey(ref));
    if (!bytes) return null;
    return this.remember(ref, this.unwrap(bytes));
  }

  /** True when the call's key was destroyed (erasure or retention). */
  async destroyed(ref: CallKeyRef): Promise<boolean> {
    return (await this.read(blobKey(ref, '.erased'))) !== null;
  }

  /** The call's key, made on first use. Refused (`content_key_destroyed`) once the key was destroyed. */
  getOrCreate(ref: CallKeyRef): Promise<ContentKey> | ContentKey {
    const hit = this.cached(ref);
    if (hit) return hit;
    const id = ContentKeyring.id(ref);
    let p = this.pending.get(id);
    if (!p) {
      p = this.create(ref).finally(() => this.pending.delete(id));
      this.pending.set(id, p);
    }
    return p;
  }

  private async create(ref: CallKeyRef): Promise<ContentKey> {
    const existing = await this.get(ref);
    if (existing) return existing;
    if (await this.destroyed(ref)) throw new ContentSealError('content_key_destroyed', `the content of call ${ref.callId} was erased`);
    const key: ContentKey = { keyId: `ck_${randomBytes(8).toString('hex')}`, key: randomBytes(32) };
    await this.blobs.put(blobKey(ref), this.wrap(key));
    // Two nodes racing: the last put wins; read back so this node uses what is stored.
    const stored = await this.read(blobKey(ref));
    return this.remember(ref, stored ? this.unwrap(stored) : key);
  }

  /**
   * Destroys the call's key: a tombstone is written first (so no new key is made for the call), then the key blob
   * is deleted. Resolves the destroyed key's id, or null when the call had no key.
   */
  async destroy(ref: CallKeyRef, at: number): Promise<string | null> {
    const bytes = await this.read(blobKey(ref));
    const keyId = bytes ? this.unwrap(bytes).keyId : (this.cached(ref)?.keyId ?? null);
    await this.blobs.put(blobKey(ref, '.erased'), Buffer.from(JSON.stringify({ v: 1, keyId, at })));
    await this.blobs.delete(this.blobs.uriFor(blobKey(ref)));
    this.cache.delete(ContentKeyring.id(ref));
    this.byCall.delete(ref.callId);
    return keyId;
  }

  /**
   * Drops the call's key from this node's memory (another node erased the call: its key file or object is gone,
   * and a copy held here must not keep opening what the log still holds sealed).
   */
  forget(ref: CallKeyRef): void {
    this.cache.delete(ContentKeyring.id(ref));
    this.byCall.delete(ref.callId);
  }

  /** The id of the call's key, without creating one. */
  async keyIdOf(ref: CallKeyRef): Promise<string | null> {
    return (await this.get(ref))?.keyId ?? null;
  }

  private remember(ref: CallKeyRef, key: ContentKey): ContentKey {
    this.cache.set(ContentKeyring.id(ref), key);
    this.byCall.set(ref.callId, key);
    if (this.cache.size > 20_000) this.cache.delete(this.cache.keys().next().value as string);
    if (this.byCall.size > 20_000) this.byCall.delete(this.byCall.keys().next().value as string);
    return key;
  }

  private async read(key: string): Promise<Buffer | null> {
    try {
      return await this.blobs.get(this.blobs.uriFor(key));
    } catch (err) {
      if (err instanceof BlobStoreError && err.code === 'NOT_FOUND') return null;
      throw err;
    }
  }

  private wrap(k: ContentKey): Buffer {
    const wrapped = sealAead(this.master.key, wrapAad(this.master, k.keyId), k.key).toString('base64');
    const body: WrappedKey = { v: 1, keyId: k.keyId, masterKeyId: this.master.keyId, wrapped };
    return Buffer.from(JSON.stringify(body));
  }

  private unwrap(bytes: Buffer): ContentKey {
    const body = JSON.parse(bytes.toString('utf8')) as WrappedKey;
    return { keyId: body.keyId, key: openAead(this.master.key, wrapAad(this.master, body.keyId), Buffer.from(body.wrapped, 'base64')) };
  }
}
