/**
 * Which code `switchboard` runs: the build in dist/ (plain JavaScript, nothing compiled at start) when it is
 * fresh, else the TypeScript sources through tsx, with a one-line notice on stderr.
 *
 *   dist/build.json  { builtAt, inputs: [every project source the build was made from] }   (scripts/build.mjs)
 *
 *   no dist/build.json                       → sources ("no build")
 *   an input modified after builtAt, or gone → sources ("… changed since the build")
 *   otherwise                                → dist/main.mjs
 *
 * "Modified after" is the file's mtime against the time the build started (taken before esbuild read anything),
 * so an edit, a `git checkout` or a pull (which rewrite files with the current time) all count, and an edit made
 * while the build ran too. Cost: one stat per input (a few hundred, a few ms). A source added without any input
 * changing cannot be in the bundle, so it needs no check. `npm run build` (also `npm ci`, `npm test`) refreshes it.
 */
import fs from 'node:fs';
import path from 'node:path';

/**
 * @param {string} root the package's folder
 * @returns {{ kind: 'dist', main: string } | { kind: 'source', reason: string }}
 */
export function chooseEntry(root) {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(root, 'dist', 'build.json'), 'utf8'));
  } catch {
    return { kind: 'source', reason: 'no build in dist/' };
  }
  const builtAt = Number(manifest?.builtAt);
  const inputs = Array.isArray(manifest?.inputs) ? manifest.inputs : [];
  if (!Number.isFinite(builtAt) || inputs.length === 0) return { kind: 'source', reason: 'dist/build.json is unreadable' };
  for (const rel of inputs) {
    let mtimeMs;
    try {
      mtimeMs = fs.statSync(path.join(root, rel)).mtimeMs;
    } catch {
      return { kind: 'source', reason: `${rel} is gone since the build` };
    }
    if (mtimeMs > builtAt) return { kind: 'source', reason: `${rel} changed since the build` };
  }
  return { kind: 'dist', main: path.join(root, 'dist', 'main.mjs') };
}
