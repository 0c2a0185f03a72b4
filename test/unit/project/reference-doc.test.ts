/**
 * docs/reference.md is the reference a user of the repository has (the README links it; nothing outside the
 * repository is linked). It must match the code: every environment variable the gateway or the CLI reads, every HTTP
 * route and WebSocket path it serves and every CLI command is listed, and every variable listed is read somewhere.
 * The variables are read from cli/config/schema.ts (the one place that declares them) and, as a net for one read
 * anywhere else, from every name of our prefixes in the code.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { sourceFiles, type SourceFile } from '../../../scripts/sources.ts';
import { VARIABLE_NAMES } from '../../../cli/config/schema.ts';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');
const SOURCE_DIRS = ['agents', 'api', 'bridge', 'campaigns', 'cli', 'consent', 'http', 'ingress', 'media', 'recording', 'schema', 'speech', 'store'];
const doc = readFileSync(path.join(ROOT, 'docs', 'reference.md'), 'utf8');

function sources(): SourceFile[] {
  return sourceFiles(SOURCE_DIRS, { root: ROOT, match: /\.(ts|mjs)$/ });
}
const code = sources();

/** Variables named in code (config schema keys, `env.X`, `env['X']`, messages naming them): every one a user can set. */
function variablesInCode(): Set<string> {
  const names = new Set<string>();
  for (const { text } of code) for (const m of text.matchAll(/\b((?:SWITCHBOARD|TWILIO|VONAGE|DEEPGRAM|OPENAI)_[A-Z0-9_]*[A-Z0-9])\b/g)) names.add(m[1]!);
  return names;
}

test('every environment variable the code reads is in docs/reference.md, and every one listed there is read', () => {
  const inCode = variablesInCode();
  assert.ok(inCode.has('SWITCHBOARD_HTTP_PORT') && inCode.has('SWITCHBOARD_WEBRTC_ICE_SERVERS'), [...inCode].join(' '));
  const missing = [...inCode].filter((v) => !doc.includes(`\`${v}\``));
  assert.deepEqual(missing, [], 'read in code but not documented');
  const listed = new Set([...doc.matchAll(/`((?:SWITCHBOARD|TWILIO|VONAGE|DEEPGRAM|OPENAI)_[A-Z0-9_]+)`/g)].map((m) => m[1]!));
  const everywhere = code.map((c) => c.text).join('\n');
  const unread = [...listed].filter((v) => !everywhere.includes(v));
  assert.deepEqual(unread, [], 'documented but read nowhere');
});

test('every variable of the configuration schema (cli/config/schema.ts, what `switchboard config` prints) is in docs/reference.md', () => {
  assert.ok(VARIABLE_NAMES.length >= 40, VARIABLE_NAMES.join(' '));
  const missing = VARIABLE_NAMES.filter((v) => !doc.includes(`\`${v}\``));
  assert.deepEqual(missing, [], 'in the schema but not documented');
});

test('every HTTP route and WebSocket path served is in docs/reference.md', () => {
  const routes = new Set<string>();
  for (const { text } of code) {
    for (const m of text.matchAll(/\.(?:get|post|put|delete|patch)\(\s*'(\/[^']*)'/g)) routes.add(m[1]!);
    for (const m of text.matchAll(/onUpgrade\(\s*'(\/[^']*)'/g)) routes.add(m[1]!);
    for (const m of text.matchAll(/routes: \[('[^\]]*)\]/g)) for (const r of m[1]!.matchAll(/'(\/[^']*)'/g)) routes.add(r[1]!);
  }
  assert.ok(routes.has('/v1/access-log') && routes.has('/twilio/media') && routes.has('/phone'), [...routes].join(' '));
  const missing = [...routes].filter((r) => !/\/(app\.js|style\.css)$|\/$/.test(r)).filter((r) => !doc.includes(r));
  assert.deepEqual(missing, [], 'served but not documented');
});

test('every CLI command is in docs/reference.md', () => {
  const help = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'switchboard.mjs'), '--help'], { encoding: 'utf8' });
  const commands = [...help.slice(help.indexOf('Commands:')).matchAll(/^ {2}([a-z]+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  assert.ok(commands.length >= 10, help);
  for (const c of commands) assert.ok(doc.includes(`\`switchboard ${c}`), `switchboard ${c} is not documented`);
});

test('the README links the reference and nothing outside the repository', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.match(readme, /\]\(docs\/reference\.md/);
  assert.doesNotMatch(readme, /\.\.\/shared|CONTRACT\.md/);
});

test('the README\'s shell examples define $T before using it and save downloads to a file', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const firstUse = readme.indexOf('$T');
  const firstDefinition = readme.search(/^T=/m);
  assert.ok(firstDefinition !== -1 && firstDefinition < firstUse, 'T= comes before the first $T');
  for (const line of readme.split('\n').filter((l) => /^curl .*\/(recording|evidence)\b/.test(l))) assert.match(line, / -o \S/, line);
});
