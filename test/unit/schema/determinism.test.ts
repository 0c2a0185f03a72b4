import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { checkDeterminism } from '../../../scripts/check-determinism.ts';

const root = path.join(import.meta.dirname, '..', '..', '..');

test('schema/ has no wall clock, randomness, timers, I/O or module state', () => {
  const violations = checkDeterminism(path.join(root, 'schema'));
  assert.deepEqual(violations.map((v) => `${path.relative(root, v.file)}:${v.line}: ${v.message}`), []);
});

test('the lint catches each kind of non-determinism', () => {
  const violations = checkDeterminism(path.join(root, 'test', 'fixtures', 'nondeterministic-schema'));
  const lines = violations.map((v) => `${v.line}: ${v.message}`).join('\n');
  for (const needle of ['import of "node:fs"', 'module-level let', 'Date:', 'Math.random', 'setTimeout:', 'process:']) {
    assert.ok(lines.includes(needle), `expected a violation mentioning ${needle}; got:\n${lines}`);
  }
  assert.ok(!violations.some((v) => v.line === 3 || v.line === 11), 'importing and using zod is allowed');
});
