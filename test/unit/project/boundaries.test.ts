/**
 * The layers' import boundaries (scripts/check-boundaries.ts): adapters are known only through the ingress port
 * and the adapter list, ingress/ imports neither api/ nor cli/, the core holds no provider name, and call facts
 * are written only in bridge/.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { checkBoundaries } from '../../../scripts/check-boundaries.ts';

test('no module crosses the layer boundaries', () => {
  const violations = checkBoundaries(path.join(import.meta.dirname, '..', '..', '..'));
  assert.deepEqual(violations.map((v) => `${v.file}:${v.line}: ${v.message}`), []);
});
