/**
 * The data dir holds transcripts' ciphertext, hashes, keys and recordings:
 * only the gateway's user may read it. The directory and every directory under
 * it are 0700, every file 0600, whatever the umask: files the store creates are
 * created with their mode (SQLite gives the -wal, -shm and -journal files the
 * database file's mode, so the database and its lock are created 0600 before
 * SQLite opens them), and a data dir left looser by an older version or by
 * hand is tightened at start (`Store.tightened` lists what changed; the
 * gateway logs it).
 */
import fs from 'node:fs';
import path from 'node:path';

const LOOSE = 0o077;

/** Creates `dir` 0700 if needed, then removes group/other bits from it and everything under it. Returns what changed. */
export function secureDataDir(dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const changed: string[] = [];
  const walk = (p: string, isDir: boolean): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return; // gone meanwhile
    }
    if (st.isSymbolicLink()) return; // never follow a link out of the data dir
    if ((st.mode & LOOSE) !== 0) {
      fs.chmodSync(p, isDir ? 0o700 : 0o600);
      changed.push(p);
    }
    if (!isDir) return;
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(p, e.name), true);
      else if (e.isFile()) walk(path.join(p, e.name), false);
    }
  };
  walk(dir, true);
  return changed;
}

/** Creates `file` empty with mode 0600 if it does not exist (an existing one keeps its content; its mode is set). */
export function createPrivate(file: string): void {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
}
