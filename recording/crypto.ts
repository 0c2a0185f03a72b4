/**
 * Envelope encryption for recordings, chunked so a byte range can be
 * decrypted without the rest (HTTP Range on an encrypted blob).
 *
 * Keys. The master key comes from master-key.ts. Each recording gets a random
 * 256-bit data key, wrapped with AES-256-GCM under the master key (AAD
 * `SBREC1 data key|<keyId>`).
 *
 * Blob format:
 *   'SBREC1' | uint32 BE header length | header JSON | chunk 0 | chunk 1 | …
 *   header = {v:1, alg:'A256GCM-CHUNKED', keyId, wrappedKey, wrapIv, wrapTag,
 *             noncePrefix, chunkSize, plaintextBytes}   (binary fields base64)
 *   chunk i = AES-256-GCM(dataKey, nonce = noncePrefix(8) ‖ uint32 BE i,
 *             plaintext[i·chunkSize …]) ‖ tag(16)
 *   AAD(i)  = sha256(magic ‖ length ‖ header JSON) ‖ uint32 BE i ‖ final flag (1 byte)
 * There is always at least one chunk (an empty recording has one empty final
 * chunk), so the header is authenticated even then. Binding the header hash,
 * the index and the final flag into every chunk's AAD detects any change to
 * the header, reordered or swapped chunks, and truncation/extension (the total
 * length is also checked against the authenticated `plaintextBytes`).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { RecordingCryptoError, type MasterKey } from './master-key.ts';

export { loadOrCreateMasterKey, masterKeyFromBytes, RecordingCryptoError, type MasterKey } from './master-key.ts';

export const MAGIC = Buffer.from('SBREC1', 'ascii');
export const ALG = 'A256GCM-CHUNKED';
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
const TAG = 16;
const PREFIX = MAGIC.length + 4;
const MAX_HEADER = 64 * 1024;



const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);
const headerSchema = z.object({
  v: z.literal(1),
  alg: z.literal(ALG),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  wrappedKey: b64,
  wrapIv: b64,
  wrapTag: b64,
  noncePrefix: b64,
  chunkSize: z.number().int().min(1).max(16 * 1024 * 1024),
  plaintextBytes: z.number().int().nonnegative(),
});
export type EnvelopeHeader = z.infer<typeof headerSchema>;

/** A parsed blob header. */
export interface Envelope {
  header: EnvelopeHeader;
  /** Offset of chunk 0 in the blob. */
  dataOffset: number;
  chunks: number;
  /** Total blob length implied by the header. */
  blobBytes: number;
  headerHash: Buffer;
}

function wrapAad(keyId: string): Buffer {
  return Buffer.from(`SBREC1 data key|${keyId}`, 'utf8');
}

function chunkAad(headerHash: Buffer, index: number, final: boolean): Buffer {
  const aad = Buffer.alloc(37);
  headerHash.copy(aad, 0);
  aad.writeUInt32BE(index, 32);
  aad[36] = final ? 1 : 0;
  return aad;
}

function nonce(prefix: Buffer, index: number): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0, 0, 8);
  n.writeUInt32BE(index, 8);
  return n;
}

/** Encrypts a recording under a fresh data key wrapped by `master`. */
export function encryptRecording(plain: Buffer, master: MasterKey, opts: { chunkSize?: number } = {}): Buffer {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const dataKey = randomBytes(32);
  const wrapIv = randomBytes(12);
  const wrap = createCipheriv('aes-256-gcm', master.key, wrapIv);
  wrap.setAAD(wrapAad(master.keyId));
  const wrappedKey = Buffer.concat([wrap.update(dataKey), wrap.final()]);
  const header: EnvelopeHeader = headerSchema.parse({
    v: 1,
    alg: ALG,
    keyId: master.keyId,
    wrappedKey: wrappedKey.toString('base64'),
    wrapIv: wrapIv.toString('base64'),
    wrapTag: wrap.getAuthTag().toString('base64'),
    noncePrefix: randomBytes(8).toString('base64'),
    chunkSize,
    plaintextBytes: plain.length,
  });
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  const head = Buffer.concat([MAGIC, len, json]);
  const headerHash = createHash('sha256').update(head).digest();
  const prefix = Buffer.from(header.noncePrefix, 'base64');
  const chunks = Math.max(1, Math.ceil(plain.length / chunkSize));
  const parts: Buffer[] = [head];
  for (let i = 0; i < chunks; i++) {
    const c = createCipheriv('aes-256-gcm', dataKey, nonce(prefix, i));
    c.setAAD(chunkAad(headerHash, i, i === chunks - 1));
    parts.push(c.update(plain.subarray(i * chunkSize, (i + 1) * chunkSize)), c.final(), c.getAuthTag());
  }
  return Buffer.concat(parts);
}

/** Bytes of blob prefix needed to parse the header (call with at least the first 10 bytes). */
export function envelopeHeaderBytes(prefix: Buffer): number {
  if (prefix.length < PREFIX || !prefix.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new RecordingCryptoError('BAD_FORMAT', 'not an encrypted recording (bad magic)');
  }
  const len = prefix.readUInt32BE(MAGIC.length);
  if (len === 0 || len > MAX_HEADER) throw new RecordingCryptoError('BAD_FORMAT', `implausible header length ${len}`);
  return PREFIX + len;
}

/** Parses the header from the start of a blob (at least `envelopeHeaderBytes` long). */
export function readEnvelope(prefix: Buffer): Envelope {
  const dataOffset = envelopeHeaderBytes(prefix);
  if (prefix.length < dataOffset) throw new RecordingCryptoError('BAD_FORMAT', 'recording truncated inside its header');
  let header: EnvelopeHeader;
  try {
    header = headerSchema.parse(JSON.parse(prefix.subarray(PREFIX, dataOffset).toString('utf8')));
  } catch (err) {
    throw new RecordingCryptoError('BAD_FORMAT', `corrupt recording header: ${(err as Error).message.split('\n')[0]}`);
  }
  const chunks = Math.max(1, Math.ceil(header.plaintextBytes / header.chunkSize));
  return {
    header,
    dataOffset,
    chunks,
    blobBytes: dataOffset + header.plaintextBytes + chunks * TAG,
    headerHash: createHash('sha256').update(prefix.subarray(0, dataOffset)).digest(),
  };
}

function unwrapDataKey(env: Envelope, master: MasterKey): Buffer {
  const h = env.header;
  if (h.keyId !== master.keyId) {
    throw new RecordingCryptoError('WRONG_KEY', `recording is encrypted under master key ${h.keyId}; the key given is ${master.keyId}`);
  }
  try {
    const d = createDecipheriv('aes-256-gcm', master.key, Buffer.from(h.wrapIv, 'base64'));
    d.setAAD(wrapAad(h.keyId));
    d.setAuthTag(Buffer.from(h.wrapTag, 'base64'));
    const key = Buffer.concat([d.update(Buffer.from(h.wrappedKey, 'base64')), d.final()]);
    if (key.length !== 32) throw new Error('bad key length');
    return key;
  } catch {
    throw new RecordingCryptoError('TAMPERED', 'data key failed to unwrap: wrong master key or tampered header');
  }
}

/** The inclusive blob byte range holding the chunks for plaintext bytes [start, end]. */
export function cipherSpan(env: Envelope, start: number, end: number): { firstChunk: number; lastChunk: number; blobStart: number; blobEnd: number } {
  const size = env.header.chunkSize;
  const firstChunk = Math.floor(start / size);
  const lastChunk = Math.max(firstChunk, Math.floor(end / size));
  const blobStart = env.dataOffset + firstChunk * (size + TAG);
  const blobEnd = Math.min(env.blobBytes, env.dataOffset + (lastChunk + 1) * (size + TAG)) - 1;
  return { firstChunk, lastChunk, blobStart, blobEnd };
}

/** Decrypts chunks [first, last] held in `cipher` (blob bytes from `cipherSpan().blobStart`). */
function decryptChunks(env: Envelope, dataKey: Buffer, cipher: Buffer, first: number, last: number): Buffer {
  const { chunkSize, plaintextBytes, noncePrefix } = env.header;
  const prefix = Buffer.from(noncePrefix, 'base64');
  const parts: Buffer[] = [];
  let off = 0;
  for (let i = first; i <= last; i++) {
    const plainLen = Math.min(chunkSize, plaintextBytes - i * chunkSize);
    const ct = cipher.subarray(off, off + plainLen);
    const tag = cipher.subarray(off + plainLen, off + plainLen + TAG);
    if (ct.length !== plainLen || tag.length !== TAG) throw new RecordingCryptoError('TAMPERED', `chunk ${i} is truncated`);
    try {
      const d = createDecipheriv('aes-256-gcm', dataKey, nonce(prefix, i));
      d.setAAD(chunkAad(env.headerHash, i, i === env.chunks - 1));
      d.setAuthTag(tag);
      parts.push(d.update(ct), d.final());
    } catch {
      throw new RecordingCryptoError('TAMPERED', `chunk ${i} failed authentication: the recording was tampered with or corrupted`);
    }
    off += plainLen + TAG;
  }
  return Buffer.concat(parts);
}

/** Decrypts a whole recording; throws RecordingCryptoError on any tampering, truncation or wrong key. */
export function decryptRecording(blob: Buffer, master: MasterKey): Buffer {
  const env = readEnvelope(blob);
  if (blob.length !== env.blobBytes) {
    throw new RecordingCryptoError('TAMPERED', `recording is ${blob.length} bytes, its header says ${env.blobBytes}: truncated or extended`);
  }
  const key = unwrapDataKey(env, master);
  return decryptChunks(env, key, blob.subarray(env.dataOffset), 0, env.chunks - 1);
}

/**
 * Decrypts plaintext bytes [start, end] (inclusive, like HTTP Range; `end` is
 * clamped to the last byte) touching only the chunks that hold them. Only
 * those chunks are authenticated: a whole-file check is `decryptRecording`.
 */
export function decryptRange(blob: Buffer, master: MasterKey, start: number, end: number): Buffer {
  const env = readEnvelope(blob);
  const size = env.header.plaintextBytes;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || start >= size) {
    throw new RangeError(`range ${start}-${end} is not satisfiable for ${size} bytes`);
  }
  const last = Math.min(end, size - 1);
  const span = cipherSpan(env, start, last);
  if (blob.length < span.blobEnd + 1) throw new RecordingCryptoError('TAMPERED', 'recording is truncated');
  const key = unwrapDataKey(env, master);
  const plain = decryptChunks(env, key, blob.subarray(span.blobStart, span.blobEnd + 1), span.firstChunk, span.lastChunk);
  const base = span.firstChunk * env.header.chunkSize;
  return plain.subarray(start - base, last - base + 1);
}

/**
 * Range decryption against a blob store: reads only the header and the
 * chunks needed. `read(start, end)` returns blob bytes [start, end] inclusive.
 */
export async function decryptRangeFrom(
  read: (start: number, end: number) => Promise<Buffer>,
  master: MasterKey,
  start: number,
  end: number,
): Promise<{ data: Buffer; plaintextBytes: number }> {
  const headLen = envelopeHeaderBytes(await read(0, PREFIX - 1));
  const env = readEnvelope(await read(0, headLen - 1));
  const size = env.header.plaintextBytes;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || start >= size) {
    throw new RangeError(`range ${start}-${end} is not satisfiable for ${size} bytes`);
  }
  const last = Math.min(end, size - 1);
  const span = cipherSpan(env, start, last);
  const key = unwrapDataKey(env, master);
  const plain = decryptChunks(env, key, await read(span.blobStart, span.blobEnd), span.firstChunk, span.lastChunk);
  const base = span.firstChunk * env.header.chunkSize;
  return { data: plain.subarray(start - base, last - base + 1), plaintextBytes: size };
}
