/**
 * The recording master key: 32 random bytes per data dir, in
 * `<dataDir>/keys/recording-master.key` (raw bytes, mode 0600, directory
 * 0700), created on first use — atomically, via a temp file hard-linked into
 * place, so two processes racing both end up with the same key — and never
 * overwritten: a key file of the wrong length is an error, not a reason to make
 * a new key (that would make every existing recording unreadable).
 * `keyId` = the first 16 hex digits of sha256(key); it is stored in each
 * encrypted recording's header and the recordings row.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface MasterKey {
  readonly key: Buffer;
  /** First 16 hex digits of sha256(key). */
  readonly keyId: string;
}

/** Thrown for anything wrong with an encrypted recording: format, key or authentication. */
export class RecordingCryptoError extends Error {
  constructor(
    readonly code: 'BAD_FORMAT' | 'WRONG_KEY' | 'TAMPERED' | 'BAD_KEY_FILE',
    message: string,
  ) {
    super(message);
    this.name = 'RecordingCryptoError';
  }
}

/** Wraps 32 key bytes as a MasterKey. */
export function masterKeyFromBytes(key: Buffer): MasterKey {
  if (key.length !== 32) throw new RecordingCryptoError('BAD_KEY_FILE', `master key must be 32 bytes, got ${key.length}`);
  return { key: Buffer.from(key), keyId: createHash('sha256').update(key).digest('hex').slice(0, 16) };
}

/** Loads `<dataDir>/keys/recording-master.key`, creating it (0600, dir 0700) if absent. Never overwrites a key. */
export function loadOrCreateMasterKey(dataDir: string): MasterKey {
  const dir = path.join(dataDir, 'keys');
  const file = path.join(dir, 'recording-master.key');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, randomBytes(32));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, file); // fails if another process created the key first: then use theirs
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.unlinkSync(tmp);
    }
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  }
  if ((fs.statSync(file).mode & 0o777) !== 0o600) fs.chmodSync(file, 0o600);
  const bytes = fs.readFileSync(file);
  if (bytes.length !== 32) {
    throw new RecordingCryptoError('BAD_KEY_FILE', `${file}: expected 32 bytes, found ${bytes.length}; refusing to replace a master key`);
  }
  return masterKeyFromBytes(bytes);
}
