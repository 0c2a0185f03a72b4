/**
 * `npm test` turns a hang into a red line: its runner flags (read from
 * package.json, so this checks what CI runs) make a file whose test fails with
 * a store left open exit non-zero at once (--test-force-exit), and a test that
 * never settles fail on the timeout (--test-timeout; a short one here).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.join(import.meta.dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'runner');
/** How long a fixture run may take before we call it a hang (the fixtures themselves take a second or two). */
const HANG_MS = 60_000;

/** The `--test-*` flags of package.json's test script. */
function runnerFlags(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { test: string } };
  return pkg.scripts.test.split(/\s+/).filter((w) => w.startsWith('--test-') && !w.startsWith('--test-reporter'));
}

function runFixture(file: string, flags: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', '--test', ...flags, '--test-reporter=tap', path.join(FIXTURES, file)], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: HANG_MS,
    env: { ...process.env, NODE_TEST_CONTEXT: undefined },
  });
}

test('npm test runs with a per-file timeout and forced exit', () => {
  const flags = runnerFlags();
  assert.ok(flags.includes('--test-force-exit'), `flags: ${flags.join(' ')}`);
  const timeout = flags.find((f) => f.startsWith('--test-timeout='));
  assert.ok(timeout && Number(timeout.split('=')[1]) > 0, `flags: ${flags.join(' ')}`);
});

test('a failing test that leaves its store open: the run exits non-zero instead of hanging', () => {
  const run = runFixture('fails-with-open-store.test.ts', runnerFlags());
  assert.equal(run.signal, null, `the run hung and was killed after ${HANG_MS} ms:\n${run.stdout}`);
  assert.equal(run.status, 1, run.stdout);
  assert.match(run.stdout, /not ok 1 - fails with its store left open/);
  assert.match(run.stdout, /# fail 1/);
});

test('a test that never settles: the timeout fails it and the run exits non-zero', () => {
  const flags = runnerFlags().map((f) => (f.startsWith('--test-timeout=') ? '--test-timeout=3000' : f));
  const run = runFixture('never-settles.test.ts', flags);
  assert.equal(run.signal, null, `the run hung and was killed after ${HANG_MS} ms:\n${run.stdout}`);
  assert.equal(run.status, 1, run.stdout);
  assert.match(run.stdout, /test timed out after 3000ms/);
});
