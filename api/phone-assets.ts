/**
 * The softphone's two bundles (phone/app.ts → app.js, phone/sdk.ts → sdk.js), built once and cached by the
 * content hash of their sources, so a start reads two files instead of running esbuild.
 *
 *   hash = sha256(esbuild version, build options, every file of phone/ by name and content)
 *
 *   cacheDirs[0]  dist/phone/            prebuilt by `npm run build` (scripts/build.mjs), may be read-only
 *   cacheDirs[1]  DATA_DIR/cache/phone/  written on a miss (mode 0600, atomic rename), read on the next start
 *
 *   app-<hash>.js / sdk-<hash>.js   found in any cache dir → used as they are (nothing built)
 *                                   none → esbuild both, write them to the last cache dir that takes them
 *
 * A changed source gives a new hash, so a stale bundle is never served; old files are left for the operator
 * (each is ~100 kB). phone/ imports nothing outside itself (the hash covers exactly what esbuild reads).
 * esbuild itself is imported only on a miss (a start that finds its bundles loads no esbuild); the hash takes
 * its version from its package.json.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export const PHONE_DIR = path.join(import.meta.dirname, '..', 'phone');
/** The prebuilt cache, next to the rest of the build (scripts/build.mjs). */
export const DIST_PHONE_CACHE = path.join(PHONE_DIR, '..', 'dist', 'phone');

const BUNDLES = [
  { name: 'app', entry: 'app.ts', format: 'iife' },
  { name: 'sdk', entry: 'sdk.ts', format: 'esm' },
] as const;
/** Bump when the options below change, so old caches are not taken for new ones. */
const OPTIONS_VERSION = 'es2020-minify-1';

export interface PhoneAssets {
  app: Buffer;
  sdk: Buffer;
  hash: string;
  /** Whether this call ran esbuild (false: read from a cache file). */
  built: boolean;
  /** Where the bundles were read from or written to (null: built and no cache dir took them). */
  cacheDir: string | null;
}

export interface PhoneAssetsOptions {
  /** The softphone's sources (default phone/). */
  sourceDir?: string;
  /** Looked up in order; a miss is written to the last one that takes it. */
  cacheDirs: string[];
}

/** The installed esbuild's version, read from its package.json (importing esbuild costs tens of ms at start). */
let esbuildVersionRead: string | null = null;
function esbuildVersion(): string {
  esbuildVersionRead ??= (createRequire(import.meta.url)('esbuild/package.json') as { version: string }).version;
  return esbuildVersionRead;
}

/** sha256 over what the bundles are made of; reads every file of `dir` (a few small files, well under a ms). */
export function phoneSourceHash(dir: string = PHONE_DIR): string {
  const h = createHash('sha256').update(`esbuild ${esbuildVersion()}\0${OPTIONS_VERSION}\0`);
  for (const name of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (!fs.statSync(p).isFile()) continue;
    h.update(`${name}\0`).update(fs.readFileSync(p)).update('\0');
  }
  return h.digest('hex').slice(0, 32);
}

export async function loadPhoneAssets(opts: PhoneAssetsOptions): Promise<PhoneAssets> {
  const sourceDir = opts.sourceDir ?? PHONE_DIR;
  const hash = phoneSourceHash(sourceDir);
  const file = (dir: string, name: string): string => path.join(dir, `${name}-${hash}.js`);
  for (const dir of opts.cacheDirs) {
    try {
      return { app: fs.readFileSync(file(dir, 'app')), sdk: fs.readFileSync(file(dir, 'sdk')), hash, built: false, cacheDir: dir };
    } catch {
      // not in this cache
    }
  }
  const [app, sdk] = await Promise.all(BUNDLES.map((b) => bundle(path.join(sourceDir, b.entry), b.format)));
  if (!app || !sdk) throw new Error('esbuild produced nothing for the softphone');
  for (const dir of [...opts.cacheDirs].reverse()) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeAtomic(file(dir, 'app'), app);
      writeAtomic(file(dir, 'sdk'), sdk);
      return { app, sdk, hash, built: true, cacheDir: dir };
    } catch {
      // a read-only cache: try the next one
    }
  }
  return { app, sdk, hash, built: true, cacheDir: null };
}

function writeAtomic(target: string, body: Buffer): void {
  const tmp = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, body, { mode: 0o600 });
  fs.renameSync(tmp, target);
}

async function bundle(entry: string, format: 'iife' | 'esm'): Promise<Buffer> {
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format,
    target: ['es2020'],
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error(`esbuild produced nothing for ${entry}`);
  return Buffer.from(file.contents);
}
