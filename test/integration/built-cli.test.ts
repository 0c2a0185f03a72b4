/**
 * The `switchboard` command runs the build (dist/, scripts/build.mjs) without tsx when it is fresh, and the
 * sources through tsx, with a one-line notice, when it is missing or older than a source (bin/launch.mjs).
 *
 * "Without tsx" is checked by a module hook given to node (`--import`) that refuses to resolve any specifier
 * naming tsx: the built CLI runs under it; the hook's own bite is shown by a control that imports tsx.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chooseEntry } from '../../bin/launch.mjs';
import { workerBoot } from '../../agents/host/worker-agent.ts';
import { tmpDir } from '../helpers/tmp.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'switchboard.mjs');

/** A root with a fake build (dist/build.json, dist/main.mjs saying "dist ran") and the real bin/ and sources linked in. */
function fakeRoot(manifest: object | null): string {
  const root = tmpDir('sb-launch-');
  fs.mkdirSync(path.join(root, 'bin'));
  for (const f of ['switchboard.mjs', 'launch.mjs']) fs.copyFileSync(path.join(ROOT, 'bin', f), path.join(root, 'bin', f));
  for (const d of ['cli', 'node_modules']) fs.symlinkSync(path.join(ROOT, d), path.join(root, d));
  fs.mkdirSync(path.join(root, 'src'));
  fs.writeFileSync(path.join(root, 'src', 'a.ts'), 'export {};\n');
  if (manifest) {
    fs.mkdirSync(path.join(root, 'dist'));
    fs.writeFileSync(path.join(root, 'dist', 'build.json'), JSON.stringify(manifest));
    fs.writeFileSync(path.join(root, 'dist', 'main.mjs'), "console.log('dist ran');\n");
  }
  return root;
}

/** Sets a file's mtime to `ms` (epoch milliseconds). */
const touch = (file: string, ms: number): void => fs.utimesSync(file, ms / 1000, ms / 1000);

test('chooseEntry: no build, a source modified after the build or gone → the sources; otherwise dist/main.mjs', () => {
  const builtAt = Date.UTC(2026, 0, 1);
  assert.deepEqual(chooseEntry(fakeRoot(null)), { kind: 'source', reason: 'no build in dist/' });

  const root = fakeRoot({ builtAt, inputs: ['src/a.ts'] });
  touch(path.join(root, 'src', 'a.ts'), builtAt - 1000);
  assert.deepEqual(chooseEntry(root), { kind: 'dist', main: path.join(root, 'dist', 'main.mjs') });
  touch(path.join(root, 'src', 'a.ts'), builtAt + 1);
  assert.deepEqual(chooseEntry(root), { kind: 'source', reason: 'src/a.ts changed since the build' });
  fs.rmSync(path.join(root, 'src', 'a.ts'));
  assert.deepEqual(chooseEntry(root), { kind: 'source', reason: 'src/a.ts is gone since the build' });
});

test('bin/switchboard.mjs runs a fresh build, and falls back to the sources through tsx with one line when it is stale', () => {
  const fresh = fakeRoot({ builtAt: Date.UTC(2026, 0, 1), inputs: ['src/a.ts'] });
  touch(path.join(fresh, 'src', 'a.ts'), Date.UTC(2025, 0, 1));
  const a = spawnSync(process.execPath, [path.join(fresh, 'bin', 'switchboard.mjs'), '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, 'dist ran\n');
  assert.equal(a.stderr, '');

  const stale = fakeRoot({ builtAt: Date.UTC(2026, 0, 1), inputs: ['src/a.ts'] });
  touch(path.join(stale, 'src', 'a.ts'), Date.UTC(2026, 0, 2));
  const b = spawnSync(process.execPath, [path.join(stale, 'bin', 'switchboard.mjs'), '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(b.status, 0, b.stderr);
  assert.doesNotMatch(b.stdout, /dist ran/, 'the stale build did not run');
  assert.match(b.stdout, /Usage: switchboard/, 'the sources ran');
  assert.equal(b.stderr, 'switchboard: running the TypeScript sources through tsx (src/a.ts changed since the build; `npm run build` makes starts faster)\n');
});

test('the built CLI runs with no tsx loaded (a hook that refuses tsx), and the hook does refuse it', () => {
  if (chooseEntry(ROOT).kind !== 'dist') {
    const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(built.status, 0, `npm run build: ${built.stderr}`);
  }
  assert.equal(chooseEntry(ROOT).kind, 'dist');
  const dir = tmpDir('sb-notsx-');
  const hooks = path.join(dir, 'hooks.mjs');
  fs.writeFileSync(
    hooks,
    "export async function resolve(specifier, context, next) {\n  if (/(^|[\\\\/])tsx([\\\\/]|$)/.test(specifier)) throw new Error(`tsx refused: ${specifier}`);\n  const r = await next(specifier, context);\n  if (/[\\\\/]node_modules[\\\\/]tsx[\\\\/]/.test(r.url)) throw new Error(`tsx refused: ${r.url}`);\n  return r;\n}\n",
  );
  const register = path.join(dir, 'register.mjs');
  fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);

  const control = spawnSync(process.execPath, ['--import', register, '--input-type=module', '-e', "await import('tsx/esm/api')"], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(control.status, 0, 'importing tsx under the hook fails');
  assert.match(control.stderr, /tsx refused/);

  const help = spawnSync(process.execPath, ['--import', register, BIN, '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /Usage: switchboard/);
  assert.equal(help.stderr, '', 'no fallback notice');
  const config = spawnSync(process.execPath, ['--import', register, BIN, 'config', '--json'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SWITCHBOARD_DATA_DIR: dir } });
  assert.equal(config.status, 0, config.stderr);
  assert.ok(Array.isArray(JSON.parse(config.stdout)));
});

test("an agent worker runs dist/agent-worker.mjs itself when the build is fresh; else tsx's bootstrap of worker-entry.ts", () => {
  const built = workerBoot(pathToFileURL(path.join(ROOT, 'dist', 'chunk-ABC.mjs')).href);
  assert.equal(built.eval, false);
  assert.equal(String(built.entry), pathToFileURL(path.join(ROOT, 'dist', 'agent-worker.mjs')).href);

  const fresh = fakeRoot({ builtAt: Date.UTC(2026, 0, 1), inputs: ['src/a.ts'] });
  touch(path.join(fresh, 'src', 'a.ts'), Date.UTC(2025, 0, 1));
  const fromSource = workerBoot(pathToFileURL(path.join(fresh, 'agents', 'host', 'worker-agent.ts')).href);
  assert.equal(fromSource.eval, false);
  assert.equal(String(fromSource.entry), pathToFileURL(path.join(fresh, 'dist', 'agent-worker.mjs')).href);

  const stale = fakeRoot({ builtAt: Date.UTC(2026, 0, 1), inputs: ['src/a.ts'] });
  touch(path.join(stale, 'src', 'a.ts'), Date.UTC(2026, 0, 2));
  const viaTsx = workerBoot(pathToFileURL(path.join(stale, 'agents', 'host', 'worker-agent.ts')).href);
  assert.equal(viaTsx.eval, true);
  assert.match(String(viaTsx.entry), /tsx.*worker-entry\.ts/s);
});
