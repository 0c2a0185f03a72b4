/**
 * The real-ENOSPC tests need `mount`. Run as an unprivileged user (a user
 * namespace without root: `unshare -U`, where mount is refused), they skip with
 * the reason on a developer's machine, and fail under CI (`CI` set) instead of
 * skipping silently — the suite there must prove what it claims.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');
const BLOB_TEST = path.join(ROOT, 'test', 'unit', 'recording', 'blob-fs.test.ts');

function runUnprivileged(ci: boolean) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  if (ci) env.CI = 'true';
  else delete env.CI;
  return spawnSync(
    'unshare',
    ['-U', process.execPath, '--import', 'tsx', '--test', '--test-reporter=tap', '--test-name-pattern=disk full', BLOB_TEST],
    { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 },
  );
}

test('mount refused: outside CI the real-ENOSPC test skips with the reason; under CI it fails', { timeout: 300_000 }, (t) => {
  const probe = spawnSync('unshare', ['-U', 'true']);
  if (probe.status !== 0) return t.skip(`cannot create a user namespace here (unshare -U): ${probe.stderr}`); // the point is moot where even that is refused
  const dev = runUnprivileged(false);
  assert.equal(dev.status, 0, dev.stdout + dev.stderr);
  assert.match(dev.stdout, /# SKIP cannot mount a tmpfs here/);
  const ci = runUnprivileged(true);
  assert.notEqual(ci.status, 0, 'under CI the refused mount fails the run');
  assert.match(ci.stdout, /not ok .* disk full/);
  assert.match(ci.stdout, /under CI this real-ENOSPC test must run/);
});
