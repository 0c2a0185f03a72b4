#!/usr/bin/env node
/**
 * Builds the JavaScript the `switchboard` command runs, so a start compiles no TypeScript.
 * Run by the package's `prepare` script (`npm ci` / `npm install` build it) and by `npm run build`.
 *
 *   cli/main.ts                  ─┐                        dist/main.mjs           (bin/switchboard.mjs imports it)
 *   agents/host/worker-entry.ts   ├─ esbuild (bundle, ─►   dist/agent-worker.mjs   (an agent worker thread's main)
 *   api/phone-assets.ts          ─┘  ESM, splitting)       dist/phone-assets.mjs   (used below, and by the gateway)
 *                                                          dist/*-HASH.mjs         (shared chunks; dynamic imports stay lazy)
 *                                                          dist/build.json         (the manifest: builtAt + every input)
 *   phone/ ─► dist/phone/{app,sdk}-HASH.js   the softphone bundle, prebuilt into the content-addressed cache
 *
 * Packages stay external (resolved from node_modules at run time). Every output file sits in dist/ itself (no
 * sub-folders), so a source's `import.meta.dirname` is rewritten to `import.meta.dirname + "/../<its folder>"`:
 * paths such as `path.join(import.meta.dirname, '..', 'phone')` keep pointing at the checkout's folders.
 *
 * Freshness (bin/launch.mjs): `build.json` records `builtAt`, taken before esbuild reads any source, and the
 * metafile's list of inputs (the project files the bundle was made from). The launcher stats those files: one
 * modified after `builtAt`, or gone, makes the build stale and the command runs the sources through tsx instead.
 *
 * The build is written to a temporary folder and swapped in with a rename, so a process starting meanwhile sees
 * the old build or the new one, never half of one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(import.meta.dirname, '..');
const DIST = path.join(ROOT, 'dist');

/** `import.meta.dirname` of a project source, as seen from a file in dist/. */
const dirnamePlugin = {
  name: 'source-dirname',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      const text = await fs.promises.readFile(args.path, 'utf8');
      if (args.path.includes(`${path.sep}node_modules${path.sep}`) || !text.includes('import.meta.dirname')) return { contents: text, loader: 'ts' };
      const rel = path.relative(ROOT, path.dirname(args.path)).split(path.sep).join('/');
      const expr = `(import.meta.dirname + ${JSON.stringify(`/../${rel}`)})`;
      return { contents: text.replaceAll('import.meta.dirname', expr), loader: 'ts' };
    });
  },
};

export async function buildDist() {
  const builtAt = Date.now();
  const tmp = `${DIST}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { main: 'cli/main.ts', 'agent-worker': 'agents/host/worker-entry.ts', 'phone-assets': 'api/phone-assets.ts' },
    outdir: tmp,
    outExtension: { '.js': '.mjs' },
    entryNames: '[name]',
    chunkNames: '[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    legalComments: 'none',
    plugins: [dirnamePlugin],
  });
  const inputs = Object.keys(result.metafile.inputs)
    .filter((f) => !f.startsWith('node_modules/'))
    .sort();
  fs.writeFileSync(path.join(tmp, 'build.json'), `${JSON.stringify({ builtAt, node: process.version, inputs }, null, 1)}\n`);
  // The softphone bundle, prebuilt into the cache the gateway reads first (api/phone-assets.ts).
  const { loadPhoneAssets } = await import(pathToFileURL(path.join(tmp, 'phone-assets.mjs')).href);
  await loadPhoneAssets({ cacheDirs: [path.join(tmp, 'phone')] });
  const old = `${DIST}.old-${process.pid}`;
  if (fs.existsSync(DIST)) fs.renameSync(DIST, old);
  fs.renameSync(tmp, DIST);
  fs.rmSync(old, { recursive: true, force: true });
  return { inputs: inputs.length, ms: Date.now() - builtAt };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await buildDist();
  console.log(`switchboard: built dist/ from ${r.inputs} sources in ${r.ms} ms`);
}
