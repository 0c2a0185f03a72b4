/**
 * The CLI against a running gateway: an in-process gateway, and the real
 * `switchboard` binary as a child process with SWITCHBOARD_URL and
 * SWITCHBOARD_TOKEN. Asserts on what a user sees: tables, `--json` lines,
 * exit codes and error messages.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { finishedCall, type FinishedCall } from '../helpers/call-fixture.ts';
import { ADMIN_TOKEN, freePort, startTestGateway } from '../helpers/gateway.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
const PASSWORD = 'correct horse battery staple';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let gw: Awaited<ReturnType<typeof startTestGateway>>;
let call: FinishedCall;

/**
 * Runs the CLI asynchronously (the gateway lives in this process, so a
 * synchronous child would block it). `env` overrides; `null` removes.
 */
function cli(args: string[], opts: { env?: Record<string, string | null>; input?: string } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_URL: gw.publicUrl, SWITCHBOARD_TOKEN: ADMIN_TOKEN };
  delete env.SWITCHBOARD_DATA_DIR;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === null) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs the CLI and expects exit 0. */
async function ok(args: string[], opts: Parameters<typeof cli>[1] = {}): Promise<string> {
  const r = await cli(args, opts);
  assert.equal(r.code, 0, `switchboard ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

const jsonLines = <T>(out: string): T[] =>
  out
    .trim()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);

before(async () => {
  gw = await startTestGateway();
  call = await finishedCall(gw.store, new FsBlobStore(gw.dataDir), { tenant: 'default', master: loadOrCreateMasterKey(gw.dataDir), agent: 'receptionist' });
});
after(async () => {
  await gw?.stop();
});

test('users add creates a user that users list shows; --json lines parse', async () => {
  const added = await ok(['users', 'add', 'ada@example.com', '--role', 'compliance']);
  assert.match(added, /created user ada@example\.com \(compliance\)/);
  const list = await ok(['users', 'list']);
  assert.match(list, /^ID\s+EMAIL\s+ROLE\s+PASSWORD\s+DISABLED\s+CREATED$/m);
  assert.match(list, /ada@example\.com\s+compliance\s+no\s+no\s+\d{4}-\d{2}-\d{2}T/);
  const rows = jsonLines<{ email: string; role: string }>(await ok(['users', 'list', '--json']));
  assert.ok(rows.some((u) => u.email === 'ada@example.com' && u.role === 'compliance'));
});

test('numbers add then numbers list shows the route; a duplicate is an API error (exit 1)', async () => {
  const add = await cli(['numbers', 'add', '+15557654321', '--agent', 'concierge', '--provider', 'twilio']);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /routed \+15557654321 → agent concierge/);
  // Routed, but nothing named concierge is deployed: the user hears it now rather than on the first call.
  assert.match(add.stderr, /warning: agent concierge is not deployed in this tenant: calls to this number get the default agent/);
  const list = await ok(['numbers', 'list']);
  assert.match(list, /\+15557654321\s+concierge\s+twilio\s+\(tenant default\)/);
  assert.match(list, /1 number$/m);
  const again = await cli(['numbers', 'add', '+15557654321', '--agent', 'other']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /HTTP 409 \w+: /);
  const agents = await ok(['agents']);
  assert.match(agents, /concierge\s+0\s+-\s+\+15557654321/);
});

test('numbers add refuses a bare digit string as a phone number (400, exit 1) and routes it as a SIP user part; the built-in agent gets no warning', async () => {
  const bare = await cli(['numbers', 'add', '15551239999', '--agent', 'default']);
  assert.equal(bare.code, 1);
  assert.match(bare.stderr, /HTTP 400 invalid_number: 15551239999 is not an E\.164 number: write it with \+ and the country code \(e\.g\. \+15551239999\)/);
  const sip = await cli(['numbers', 'add', '1000', '--agent', 'default', '--provider', 'sip']);
  assert.equal(sip.code, 0, sip.stderr);
  assert.equal(sip.stderr, '');
});

test('agents deploy FILE takes the name the agent declares when --name is not given', async () => {
  const example = path.join(import.meta.dirname, '..', '..', 'agents', 'examples', 'receptionist.ts');
  const out = await ok(['deploy', example]);
  assert.match(out, /^receptionist v\d+ is \w+ at 100%/);
  const list = await ok(['agents']);
  assert.match(list, /^receptionist\s/m);
});

test('calls lists the call, --q finds it by transcript text, --json lines parse, filters narrow', async () => {
  const [list, found, notFound, otherAgent, json] = await Promise.all([
    ok(['calls']),
    ok(['calls', '--q', 'appointment']),
    ok(['calls', '--q', 'zebra']),
    ok(['calls', '--agent', 'nobody']),
    ok(['calls', '--json', '--state', 'ended', '--limit', '5']),
  ]);
  assert.match(list, /^ID\s+RECEIVED\s+STATE/m);
  assert.match(list, new RegExp(`${call.callId}\\s+\\d{4}-\\d{2}-\\d{2}T[\\d:.]+Z\\s+ended\\s+twilio\\s+\\+15550001111\\s+\\+15550002222\\s+receptionist\\s+granted\\s+yes\\s+caller_hangup`));
  assert.match(list, /1 call\(s\)/);
  assert.match(found, new RegExp(call.callId));
  assert.match(notFound, /^0 call\(s\)$/m);
  assert.match(otherAgent, /^0 call\(s\)$/m);
  const rows = jsonLines<{ id: string; state: string; consent: string }>(json);
  assert.deepEqual(
    rows.map((r) => [r.id, r.state, r.consent]),
    [[call.callId, 'ended', 'granted']],
  );
});

test('call ID shows the call with its transcript and timeline; --json parses', async () => {
  const [out, json, missing] = await Promise.all([ok(['call', call.callId, '--purpose', 'quality review']), ok(['call', call.callId, '--json']), cli(['call', 'no-such-call'])]);
  assert.match(out, new RegExp(`^call ${call.callId}  ended \\(caller_hangup\\)`));
  assert.match(out, /consent: granted via dtmf \(policy default v\d+/);
  assert.match(out, /\[00:02\.0\] caller\s+I would like to change my appointment/);
  assert.match(out, /^timeline:$/m);
  for (const kind of ['call_received', 'consent_decided', 'recording_finalized', 'call_ended']) assert.match(out, new RegExp(`\\d+Z\\s+\\d+\\s+${kind}\\s+system:test\\s+ok`));
  const detail = JSON.parse(json) as { call: { id: string }; timeline: Array<{ kind: string }> };
  assert.equal(detail.call.id, call.callId);
  assert.ok(detail.timeline.some((e) => e.kind === 'call_ended'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /HTTP 404 call_not_found: no call no-such-call/);
});

test('logs --call shows the timeline; logs shows the access log with the transcript access of `call ID`', async () => {
  const [timeline] = await Promise.all([ok(['logs', '--call', call.callId]), ok(['call', call.callId, '--purpose', 'dispute 42'])]);
  assert.match(timeline, /^AT\s+SEQ\s+EVENT\s+BY\s+RESULT\s+DETAIL$/m);
  assert.match(timeline, /call_received\s+system:test\s+ok\s+.*provider=twilio/);
  assert.match(timeline, /\d+ events$/m);
  const [log, json] = await Promise.all([ok(['logs']), ok(['logs', '--json', '--limit', '50'])]);
  assert.match(log, /^AT\s+ACTION\s+USER\s+CALL/m);
  assert.match(log, new RegExp(`transcript_accessed\\s+usr_\\S+\\s+${call.callId}\\s+${call.callId}\\s+call detail\\s+dispute 42\\s+127\\.0\\.0\\.1`));
  const entries = jsonLines<{ action: string; call_id: string; reason: string | null }>(json);
  assert.ok(entries.some((e) => e.action === 'transcript_accessed' && e.call_id === call.callId && e.reason === 'dispute 42'));
});

test('a bad token is exit 1 with the 401; no token is exit 2 naming SWITCHBOARD_TOKEN; no URL for API-only commands is exit 2', async () => {
  const [bad, viaFlag, none] = await Promise.all([
    cli(['calls'], { env: { SWITCHBOARD_TOKEN: 'sbk_not-a-real-token-at-all-000' } }),
    cli(['users', 'list', '--token', 'sbk_wrong-token-0000000000000000'], { env: { SWITCHBOARD_TOKEN: null } }),
    cli(['users', 'list'], { env: { SWITCHBOARD_TOKEN: null } }),
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /HTTP 401 unauthenticated: /);
  assert.equal(viaFlag.code, 1);
  assert.match(viaFlag.stderr, /HTTP 401/);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /SWITCHBOARD_TOKEN/);
  assert.match(none.stderr, /--token/);
  const commands = [['users', 'list'], ['numbers', 'list'], ['agents'], ['logs'], ['login', '--email', 'a@b.co']];
  const noUrl = await Promise.all(commands.map((args) => cli(args, { env: { SWITCHBOARD_URL: null } })));
  noUrl.forEach((r, i) => {
    assert.equal(r.code, 2, `${commands[i]?.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--url/);
    assert.match(r.stderr, /SWITCHBOARD_URL/);
  });
});

test('a bad --since is the server’s 400 naming since (exit 1); an unreachable gateway names its URL', async () => {
  const port = await freePort();
  const [r, down] = await Promise.all([cli(['calls', '--since', 'last tuesday']), cli(['agents', '--url', `http://127.0.0.1:${port}`])]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 400 invalid_request: .*since/);
  assert.equal(down.code, 1);
  assert.match(down.stderr, new RegExp(`cannot reach the gateway at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
});

test('login reads the password from stdin and prints a token that works for calls', async () => {
  await ok(['users', 'add', 'grace@example.com', '--role', 'developer', '--password-stdin'], { input: `${PASSWORD}\n` });
  const wrong = await cli(['login', '--email', 'grace@example.com'], { env: { SWITCHBOARD_TOKEN: null }, input: 'not the password\n' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /HTTP 401 invalid_credentials/);
  const empty = await cli(['login', '--email', 'grace@example.com'], { env: { SWITCHBOARD_TOKEN: null } });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /no password on stdin/);
  const out = await ok(['login', '--email', 'grace@example.com'], { env: { SWITCHBOARD_TOKEN: null }, input: `${PASSWORD}\n` });
  const token = out.trim();
  assert.match(token, /^\S+$/);
  // A developer may list calls but not read transcript text: the detail says so, and --q is refused.
  const as = { env: { SWITCHBOARD_TOKEN: token } };
  const [calls, detail, q] = await Promise.all([ok(['calls'], as), ok(['call', call.callId], as), cli(['calls', '--q', 'appointment'], as)]);
  assert.match(calls, new RegExp(call.callId));
  assert.match(detail, /text withheld/);
  assert.equal(q.code, 1);
  assert.match(q.stderr, /HTTP 403 forbidden/);
});

test('--url with --data-dir is a usage error; --data-dir alone stays offline even with SWITCHBOARD_URL set', async () => {
  const [both, offline, tenant] = await Promise.all([
    cli(['calls', '--url', gw.publicUrl, '--data-dir', '/nonexistent']),
    // Offline against the running gateway's data dir: the store is locked, and the message points at --url.
    cli(['calls', '--data-dir', gw.dataDir]),
    cli(['calls', '--tenant', 'other']),
  ]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /either --url .* or --data-dir/);
  assert.equal(offline.code, 2, offline.stderr);
  assert.match(offline.stderr, /pass --url and --token/);
  assert.equal(tenant.code, 2);
  assert.match(tenant.stderr, /--tenant/);
});
