/**
 * `npm ci` on the oldest Node the project claims (package.json `engines.node`) must not warn EBADENGINE: every
 * installed production package's own `engines.node` must accept that version. (cookie@2 wanted Node ≥ 22 while we
 * say ≥ 20.12; package.json's `overrides` pins cookie 1.x, whose API @fastify/cookie and light-my-request use; and
 * @nats-io/nuid 2.0.3 (3.0.0 wants Node ≥ 22; its API, `nuid.next()`, is the same), under the NATS clients of cluster mode.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');
type Version = [number, number, number];

function parseVersion(s: string): Version {
  const parts = s.replace(/^v/, '').split('.').map((p) => (p === 'x' || p === '*' || p === '' ? 0 : Number(p)));
  return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0];
}
const cmp = (a: Version, b: Version): number => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/** Whether `v` satisfies one npm range made of `||` alternatives of space-separated comparators (>=, >, <, <=, ^, N.x, *). */
export function satisfies(v: Version, range: string): boolean {
  return range.split('||').some((alt) => {
    const comparators = alt.trim().replace(/([<>=^~]+)\s+/g, '$1').split(/\s+/).filter(Boolean);
    return comparators.every((c) => {
      const m = /^(>=|<=|>|<|\^|~|=)?(.*)$/.exec(c);
      const op = m?.[1] ?? '';
      const raw = m?.[2] ?? '';
      if (raw === '*' || raw === 'x') return true;
      const w = parseVersion(raw);
      switch (op) {
        case '>=': return cmp(v, w) >= 0;
        case '>': return cmp(v, w) > 0;
        case '<=': return cmp(v, w) <= 0;
        case '<': return cmp(v, w) < 0;
        case '^': return v[0] === w[0] && cmp(v, w) >= 0;
        case '~': return v[0] === w[0] && v[1] === w[1] && cmp(v, w) >= 0;
        default: {
          const segs = raw.split('.');
          return segs.every((s, i) => s === 'x' || s === '*' || Number(s) === v[i]);
        }
      }
    });
  });
}

test('the range reader agrees with npm on the forms the lockfile uses', () => {
  assert.equal(satisfies([20, 12, 0], '>=22'), false);
  assert.equal(satisfies([20, 12, 0], '>= 18'), true);
  assert.equal(satisfies([20, 12, 0], '20.x || 22.x'), true);
  assert.equal(satisfies([20, 12, 0], '^12.20.0 || ^14.13.1 || >=16.0.0'), true);
  assert.equal(satisfies([20, 12, 0], '^8.16.0 || ^10.6.0'), false);
  assert.equal(satisfies([20, 12, 0], '*'), true);
});

test('every installed production package accepts the oldest Node we claim (no EBADENGINE on npm ci)', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const floor = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(pkg.engines.node.trim());
  assert.ok(floor?.[1], `engines.node should be a plain ">=X.Y" floor, got ${pkg.engines.node}`);
  const oldest = parseVersion(floor[1]);
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; dev?: boolean; engines?: { node?: string } | string[] }>;
  };
  const refusing = Object.entries(lock.packages)
    .filter(([name, p]) => name !== '' && !p.dev && p.engines && !Array.isArray(p.engines) && p.engines.node)
    .filter(([, p]) => !satisfies(oldest, (p.engines as { node: string }).node))
    .map(([name, p]) => `${name}@${p.version} wants node ${(p.engines as { node: string }).node}`);
  assert.deepEqual(refusing, [], `npm ci would warn EBADENGINE on Node ${floor[1]}`);
});
