/**
 * Issue 22: a start loads only what answering `/healthz` needs. werift (WebRTC/SRTP), the twilio SDK, the Vonage SDK
 * (outbound Vonage calls only) and the NATS clients are imported on first use, and werift and the twilio SDK in the background once the gateway listens
 * (ingress/werift.ts, ingress/twilio/sdk.ts, store/store.ts `openCluster`). So are ws (media and subscription
 * sockets: http/ws-server.ts), jsonwebtoken (Vonage signatures: ingress/vonage/jwt.ts), @evan/opus (WebRTC legs:
 * ingress/webrtc/sessions.ts) and prom-client (/metrics: api/metrics.ts), all brought in the background once the
 * gateway listens; esbuild (the softphone bundle when dist/phone/ has no match: api/phone-assets.ts; agent deploys),
 * fluent-ffmpeg (Ogg/MP3 recordings: recording/transcode.ts) and yazl (evidence packs) only when they are used;
 * fastify's schema compilers (ajv, fast-json-stringify's compiler) only for a route with a schema, which the gateway has not
 * (http/schema-compilers.ts).
 *
 * The built CLI (`switchboard start`) runs under a module hook (`--import` in NODE_OPTIONS) that appends, for each
 * package an `import` resolves, the package name and the wall-clock time to a file. The gateway's own
 * "switchboard listening" log line carries the time it listened: every werift or twilio resolution must come
 * after it (an order, not a duration); a node without cluster mode resolves no NATS client at all, one that has
 * placed no Vonage call no Vonage SDK, one that has built, recorded and packed nothing no esbuild, fluent-ffmpeg
 * or yazl, and onnxruntime (the silero VAD) is never loaded under the default energy VAD.
 * The calls that use them still work: test/e2e/webrtc.test.ts, sip-baresip-srtp.test.ts, sip-srtp-kill9.test.ts,
 * twilio.test.ts and twilio-kill9.test.ts run them against this lazy loading.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chooseEntry } from '../../bin/launch.mjs';
import { freePort, spawnGateway } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const LAZY = ['werift', 'twilio', 'ws', 'jsonwebtoken', '@evan/opus', 'prom-client'];
const NEVER = ['@nats-io/transport-node', '@nats-io/jetstream', '@nats-io/nats-core', '@vonage/server-sdk', 'esbuild', 'fluent-ffmpeg', 'yazl', 'ajv', '@fastify/ajv-compiler', '@fastify/fast-json-stringify-compiler', 'onnxruntime-node'];

/**
 * Hooks recording `name time` for every package resolved through node_modules by an `import` (a module hook, its
 * --import file) or loaded by a `require` of a bare name (CommonJS packages requiring their dependencies, which
 * the module hook does not see: a --require file; a package's package.json read for its version does not count).
 */
function recorder(dir: string): { register: string; requireHook: string; log: string } {
  const log = path.join(dir, 'resolved.txt');
  const hooks = path.join(dir, 'hooks.mjs');
  fs.writeFileSync(
    hooks,
    `import fs from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const m = /[\\\\/]node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/]/.exec(r.url);
  if (m) fs.appendFileSync(${JSON.stringify(log)}, m[1].replace('\\\\', '/') + ' ' + Date.now() + '\\n');
  return r;
}
`,
  );
  const register = path.join(dir, 'register.mjs');
  fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const requireHook = path.join(dir, 'require-hook.cjs');
  fs.writeFileSync(
    requireHook,
    `const Module = require('node:module');
const fs = require('node:fs');
const load = Module._load;
Module._load = function (request, parent, isMain) {
  const m = /^((?:@[^/]+\\/)?[^./@][^/]*)/.exec(request);
  if (m && !request.startsWith('node:') && !Module.isBuiltin(request) && !request.endsWith('/package.json')) fs.appendFileSync(${JSON.stringify(log)}, m[1] + ' ' + Date.now() + '\\n');
  return load.apply(this, arguments);
};
`,
  );
  return { register, requireHook, log };
}

/** Every package resolved so far, with the first time it was. */
function resolved(log: string): Map<string, number> {
  const out = new Map<string, number>();
  const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
  for (const line of text.split('\n')) {
    const [name, t] = line.split(' ');
    if (name && t && !out.has(name)) out.set(name, Number(t));
  }
  return out;
}

test('a start resolves werift, the twilio SDK, ws, jsonwebtoken, Opus and prom-client only after it listens (in the background), and no NATS client, esbuild, fluent-ffmpeg or yazl', async () => {
  if (chooseEntry(ROOT).kind !== 'dist') {
    const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(built.status, 0, `npm run build: ${built.stderr}`);
  }
  assert.equal(chooseEntry(ROOT).kind, 'dist', 'the built CLI runs (dist/ is fresh)');
  const dir = tmpDir('sb-lazy-');
  const { register, requireHook, log } = recorder(dir);
  const gw = await spawnGateway({ port: await freePort(), dataDir: path.join(dir, 'data'), env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${register} --require ${requireHook}`.trim() } });
  try {
    const line = gw.logs.find((l) => l.includes('switchboard listening'));
    assert.ok(line, 'the listening line');
    const listenedAt = (JSON.parse(line) as { time: number }).time;
    assert.equal(typeof listenedAt, 'number');
    const health = await fetch(`${gw.publicUrl}/healthz`);
    assert.equal(health.status, 200);

    const atStart = resolved(log);
    assert.ok(atStart.has('fastify') && atStart.has('better-sqlite3'), `the hook records the start's packages: ${[...atStart.keys()].join(', ')}`);
    assert.ok(atStart.get('fastify')! <= listenedAt, 'the start resolved fastify before it listened');

    // The background warm-up brings the LAZY packages in; a bounded wait, not a speed.
    let now = atStart;
    for (let i = 0; i < 600 && !LAZY.every((p) => now.has(p)); i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = resolved(log);
    }
    for (const p of LAZY) {
      assert.ok(now.has(p), `${p} is loaded in the background once the gateway listens`);
      assert.ok(now.get(p)! >= listenedAt, `${p} was resolved ${listenedAt - now.get(p)!} ms before the gateway listened`);
    }
    for (const p of NEVER) assert.ok(!now.has(p), `${p} is not loaded (no cluster mode, no outbound Vonage call, nothing bundled, transcoded or zipped, no route schema, SWITCHBOARD_VAD=energy)`);
  } finally {
    await gw.stop();
  }
});
