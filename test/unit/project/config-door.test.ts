/**
 * One door for configuration: no production module outside cli/config/ reads a variable from the environment. The
 * composition root parses every variable once (cli/config/schema.ts → loadConfig) and passes each module its typed
 * section; a module that read `process.env.X` (or `env.SWITCHBOARD_X` from an env object handed down) would be a
 * second door — a variable the schema, `switchboard config` and the start-up check do not know.
 *
 * Passing the environment as a whole to the config module (`loadConfig(process.env)`, `{ ...process.env, … }`) is
 * not a read and is allowed; reading a property of it is.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { sourceFiles, type SourceFile } from '../../../scripts/sources.ts';
import { VARIABLE_NAMES } from '../../../cli/config/schema.ts';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');
const SOURCE_DIRS = ['agents', 'api', 'bridge', 'campaigns', 'cli', 'consent', 'ingress', 'media', 'recording', 'schema', 'speech', 'store'];
const CONFIG_MODULE = `cli${path.sep}config${path.sep}`;

/** What may stay, and why. Each entry is a file and the names it may read. */
const ALLOWED: Record<string, { names: RegExp; why: string }> = {
  'agents/llm.ts': {
    names: /^OPENAI_(BASE_URL|API_KEY)$/,
    why: "the agent SDK's chat helper runs inside agent code (worker threads, or an agent author's own tests), not in the gateway's composition; it reads the OpenAI SDKs' standard variables as they do, and an explicit option wins",
  },
  'agents/examples/assistant.ts': { names: /^OPENAI_MODEL$/, why: "an example agent: an agent author's code, configured as its author likes" },
  'agents/examples/receptionist.ts': { names: /^RECEPTIONIST_TOOL_URL$/, why: "an example agent: an agent author's code" },
  'recording/transcode.ts': {
    names: /^(PATH|FFMPEG_PATH)$/,
    why: "finding the ffmpeg binary: PATH is the system's search path, FFMPEG_PATH fluent-ffmpeg's own convention when SWITCHBOARD_FFMPEG (the configured path) is not given — neither is Switchboard configuration",
  },
  'speech/pocketsphinx.ts': { names: /^PATH$/, why: "finding the pocketsphinx binary on the system's search path" },
  'ingress/twilio/connect.ts': {
    names: /^name$/,
    why: '`numbers connect --provider twilio` is handed the variables cli/config/client.ts picked through the schema (connectSettings); it looks them up by name only to name a missing one',
  },
  'ingress/vonage/connect.ts': {
    names: /^(DEBUG|name)$/,
    why: '`numbers connect` hands it the variables cli/config/client.ts picked through the schema (connectSettings); it looks them up by name only to name a missing one, and DEBUG is the Vonage SDK\'s logging switch, not ours',
  },
};

function sources(): SourceFile[] {
  return sourceFiles(SOURCE_DIRS, { root: ROOT, match: /\.(ts|mjs)$/ });
}

/** `process.env.X`, `process.env['X']`, `process.env[x]`, and `env.X` / `env['X']` of our prefixes on an env object handed down. */
function reads(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/process\.env(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*'?([A-Za-z_][A-Za-z0-9_]*)'?\s*\])/g)) found.push(m[1] ?? m[2]!);
  for (const m of text.matchAll(/(?<!process\.)\benv(?:\.|\[\s*'?)((?:SWITCHBOARD|TWILIO|VONAGE|DEEPGRAM|OPENAI)_[A-Z0-9_]*|DEBUG)\b/g)) found.push(m[1]!);
  for (const m of text.matchAll(/(?<!process\.)\benv\[\s*([a-z][A-Za-z0-9_]*)\s*\]/g)) found.push(m[1]!);
  return found;
}

test('no production module outside cli/config/ reads configuration from the environment', () => {
  const offenders: string[] = [];
  for (const { file, text } of sources()) {
    if (file.startsWith(CONFIG_MODULE)) continue;
    const allowed = ALLOWED[file.split(path.sep).join('/')];
    for (const name of reads(text)) if (!allowed?.names.test(name)) offenders.push(`${file}: ${name}`);
  }
  assert.deepEqual(offenders, [], 'read through cli/config/ (add the variable to schema.ts and pass its section down)');
});

test('the check sees the ways a module would read a variable', () => {
  assert.deepEqual(reads("const a = process.env.SWITCHBOARD_X; const b = process.env['TWILIO_Y']; const c = env.VONAGE_Z; f(env[name]);"), ['SWITCHBOARD_X', 'TWILIO_Y', 'VONAGE_Z', 'name']);
  assert.deepEqual(reads('loadConfig(process.env); const e = { ...process.env, SWITCHBOARD_DATA_DIR: d };'), [], 'passing the environment on is not a read');
});

test('every allowed exception still exists and is not a variable of the schema', () => {
  const files = new Set(sources().map((s) => s.file.split(path.sep).join('/')));
  for (const file of Object.keys(ALLOWED)) assert.ok(files.has(file), `${file} is gone: drop it from ALLOWED`);
  for (const name of VARIABLE_NAMES) for (const [file, a] of Object.entries(ALLOWED)) assert.ok(!a.names.test(name), `${file} may not read ${name}: it is in the schema`);
});
