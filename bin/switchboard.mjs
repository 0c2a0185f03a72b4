#!/usr/bin/env node
// Runs the built CLI (dist/main.mjs, made by `npm run build`, which `npm ci` runs as `prepare`) when the build is
// fresh; otherwise — no build, or a source changed since it (bin/launch.mjs) — the TypeScript sources through tsx,
// saying so in one line on stderr.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chooseEntry } from './launch.mjs';

const entry = chooseEntry(path.join(import.meta.dirname, '..'));
if (entry.kind === 'dist') {
  await import(pathToFileURL(entry.main).href);
} else {
  process.stderr.write(`switchboard: running the TypeScript sources through tsx (${entry.reason}; \`npm run build\` makes starts faster)\n`);
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
