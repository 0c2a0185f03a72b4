/**
 * The log on a full disk (stdout is /dev/full: every write fails with
 * ENOSPC): logging never blocks and never ends the process; lines that cannot
 * be written are dropped and counted, and the count reaches /metrics.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const LOGGER = path.join(import.meta.dirname, '..', '..', '..', 'cli', 'logger.ts');

test('stdout on a full disk: 500 log lines are dropped and counted, the process goes on and exits by itself', { timeout: 60_000 }, async () => {
  const script = `
    import { createLogger, droppedLogLines } from ${JSON.stringify(LOGGER)};
    const log = createLogger('info');
    for (let i = 0; i < 500; i++) log.info({ i }, 'a line the disk cannot take');
    setTimeout(() => { process.stderr.write('alive dropped=' + droppedLogLines() + '\\n'); }, 50);
  `;
  const full = fs.openSync('/dev/full', 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', full, 'pipe'] });
  fs.closeSync(full);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 0, `the process exits cleanly (stderr: ${err.slice(-2000)})`);
  assert.match(err, /alive dropped=500\b/);
});

test('a line after the disk frees up again is preceded by the count of dropped lines', async (t) => {
  const { DroppingDestination } = await import('../../../cli/logger.ts');
  const file = path.join(fs.mkdtempSync('/tmp/sb-log-'), 'out.log');
  const fd = fs.openSync(file, 'w');
  t.after(() => fs.closeSync(fd));
  const full = fs.openSync('/dev/full', 'w');
  t.after(() => fs.closeSync(full));
  // Same destination, first over a full device, then over a file with space: the fd is swapped with dup2's effect.
  const dest = new DroppingDestination(full);
  dest.write('{"msg":"lost 1"}\n');
  dest.write('{"msg":"lost 2"}\n');
  assert.equal(dest.dropped, 2);
  (dest as unknown as { fd: number }).fd = fd;
  dest.write('{"msg":"kept"}\n');
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string; dropped?: number });
  assert.deepEqual(lines.map((l) => [l.msg, l.dropped]), [['log lines dropped (the log could not be written)', 2], ['kept', undefined]]);
});
