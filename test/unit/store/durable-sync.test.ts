/**
 * Durability with the real disk calls, not a stand-in flusher: a child process
 * runs the store under `strace -f -y` and acknowledges each command on stdout
 * the moment its submit resolves. For every acknowledgement, the trace must
 * show an fdatasync/fsync of the `-wal` file that started after the last write
 * to the WAL and returned (0) before the acknowledgement was written.
 *
 *   production     — SQLite commits with NORMAL; the store fdatasyncs the WAL
 *                    on the thread pool (store/wal-sync.ts) before settling.
 *   maximum_safety — SQLite syncs the WAL itself inside COMMIT (EXTRA).
 *
 * strace orders the two: the sync's return happens before the thread that
 * made it wakes the event loop, and the acknowledgement is written after.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DB_FILE } from '../../../store/index.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const CHILD = fileURLToPath(new URL('./durable-ack-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COMMANDS = 20;

/** Why strace cannot run here, or null. Under CI a missing tracer is a failure, not a skip. */
function straceUnavailable(): string | null {
  const probe = spawnSync('strace', ['-f', '-o', '/dev/null', 'true'], { encoding: 'utf8' });
  if (probe.error) return `strace is not installed (scripts/ensure-deps.sh installs it): ${probe.error.message}`;
  if (probe.status !== 0) return `strace cannot trace here (ptrace refused?): ${probe.stderr.trim()}`;
  return null;
}

interface Call {
  name: string;
  /** The text inside the parentheses (with -y, file descriptors carry their path: `12</dir/switchboard.db-wal>`). */
  args: string;
  ret: string;
  /** Line index of the call's entry and of its return. */
  start: number;
  end: number;
}

/** Parses `strace -f` output (`PID name(args) = ret`, split across `<unfinished ...>` / `<... name resumed>` lines). */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, { name: string; args: string; start: number }>();
  text.split('\n').forEach((line, i) => {
    let m = /^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (m) return void open.set(m[1]!, { name: m[2]!, args: m[3]!, start: i });
    m = /^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+= (.*)$/.exec(line);
    if (m) {
      const begun = open.get(m[1]!);
      open.delete(m[1]!);
      if (begun) calls.push({ name: begun.name, args: begun.args + m[3]!, ret: m[4]!, start: begun.start, end: i });
      return;
    }
    m = /^(\d+)\s+(\w+)\((.*)\)\s+= (.*)$/.exec(line);
    if (m) calls.push({ name: m[2]!, args: m[3]!, ret: m[4]!, start: i, end: i });
  });
  return calls;
}

function traceProfile(profile: string): { calls: Call[]; wal: string; stdout: string } {
  const dir = tmpDir('sb-durable-');
  const traceFile = path.join(dir, 'trace.txt');
  const run = spawnSync(
    'strace',
    ['-f', '-y', '-qq', '--seccomp-bpf', '-e', 'trace=write,pwrite64,fdatasync,fsync', '-o', traceFile, process.execPath, '--import', 'tsx', CHILD, dir, profile, String(COMMANDS)],
    { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(run.status, 0, `traced child failed: ${run.stderr}`);
  return { calls: parseTrace(fs.readFileSync(traceFile, 'utf8')), wal: path.join(dir, `${DB_FILE}-wal`), stdout: run.stdout };
}

/** For every `ACK n` the child wrote: the WAL sync that covered its commit, or a description of what is missing. */
function assertSyncedBeforeEachAck(calls: Call[], wal: string): void {
  const onWal = (c: Call) => c.args.startsWith(`${/^\d+/.exec(c.args)?.[0] ?? ''}<${wal}>`);
  const walWrites = calls.filter((c) => (c.name === 'pwrite64' || c.name === 'write') && onWal(c));
  const walSyncs = calls.filter((c) => (c.name === 'fdatasync' || c.name === 'fsync') && onWal(c) && c.ret === '0');
  const acks = calls.filter((c) => c.name === 'write' && /^1<[^>]*>, "ACK \d+\\n"/.test(c.args));
  assert.equal(acks.length, COMMANDS, 'the trace holds every acknowledgement');
  assert.ok(walWrites.length > 0, `the trace holds the writes to ${wal}`);
  for (const ack of acks) {
    const label = /"(ACK \d+)/.exec(ack.args)?.[1];
    const lastWrite = walWrites.filter((w) => w.end < ack.start).at(-1);
    assert.ok(lastWrite, `${label}: its batch was written to the WAL before the acknowledgement`);
    const sync = walSyncs.find((s) => s.start > lastWrite.end && s.end < ack.start);
    assert.ok(sync, `${label}: no fdatasync/fsync of ${path.basename(wal)} between the WAL write (trace line ${lastWrite.end + 1}) and the acknowledgement (line ${ack.start + 1})`);
  }
}

const unavailable = straceUnavailable();
const skip = unavailable && !process.env.CI ? unavailable : false;

test('production: the WAL is fdatasync-ed (thread pool) after each batch is written and before its submitter is told', { skip }, () => {
  assert.equal(unavailable, null, unavailable ?? '');
  const { calls, wal, stdout } = traceProfile('production');
  assert.match(stdout, new RegExp(`ACK ${COMMANDS}\\n$`));
  assertSyncedBeforeEachAck(calls, wal);
});

test('maximum_safety: SQLite syncs the WAL inside COMMIT (synchronous=EXTRA) before the submitter is told', { skip }, () => {
  assert.equal(unavailable, null, unavailable ?? '');
  const { calls, wal, stdout } = traceProfile('maximum_safety');
  assert.match(stdout, new RegExp(`ACK ${COMMANDS}\\n$`));
  assertSyncedBeforeEachAck(calls, wal);
});
