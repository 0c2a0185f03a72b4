/**
 * The first start as a newcomer sees it, through the real `switchboard start`:
 * on a terminal a short banner names /phone and /console and shows the admin
 * token once with how to sign in; through a pipe stdout stays JSON lines and
 * the token is on stderr once; a later start says how to get back in, and
 * `switchboard users token EMAIL` on the stopped data dir mints a token that
 * works; `GET /` leads to the softphone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import { BOOTSTRAP_EMAIL } from '../../api/auth/bootstrap.ts';
import { api } from '../helpers/api.ts';
import { BIN, firstStartEnv, hasScript, startProcess, type StartedProcess } from '../helpers/first-start.ts';
import { freePort } from '../helpers/gateway.ts';
import { tmpDir } from '../helpers/tmp.ts';

const running: StartedProcess[] = [];
after(async () => {
  for (const p of running) await p.stop();
});

async function start(env: NodeJS.ProcessEnv, tty = false, ready?: RegExp): Promise<StartedProcess> {
  const p = await startProcess(env, { tty, ...(ready ? { ready } : {}) });
  running.push(p);
  return p;
}

/** GET /v1/auth/me with `token`: the e-mail it signs in as, or the status. */
async function whoIs(base: string, token: string): Promise<string> {
  const r = await api<{ email?: string }>(base, 'GET', '/v1/auth/me', { token });
  return r.status === 200 ? String(r.body.email) : `HTTP ${r.status}`;
}

test('on a terminal: a banner with the /phone and /console URLs, the admin token once and how to sign in; a later start says how to recover', { timeout: 90_000 }, async (t) => {
  if (!hasScript()) throw new Error('script (util-linux) is needed for a pseudo-terminal: apt-get install bsdutils');
  const dataDir = tmpDir('sb-first-');
  const port = await freePort();
  const env = firstStartEnv(port, dataDir);
  const first = await start(env, true);
  const out = first.stdout();
  const base = first.publicUrl;
  assert.match(out, new RegExp(`Softphone: +${base}/phone`));
  assert.match(out, new RegExp(`Console: +${base}/console`));
  assert.match(out, /Sign in to the console: "Sign in with an API token"/);
  const token = /\n\s+(sbk_\S+)\r?\n/.exec(out)?.[1];
  assert.ok(token, `the banner shows the token:\n${out}`);
  assert.equal(await whoIs(first.publicUrl, token), BOOTSTRAP_EMAIL, 'the printed token is the admin token');
  await first.stop();

  const second = await start(env, true);
  t.after(() => second.stop());
  const again = second.stdout();
  assert.doesNotMatch(again, /sbk_/, 'the token is never shown again');
  assert.match(again, new RegExp(`Lost it\\? Stop the gateway, run \`switchboard users token ${BOOTSTRAP_EMAIL} --data-dir ${dataDir}\``));
});

test('through a pipe: stdout stays JSON lines, the token is on stderr once; users token on the stopped data dir gets back in', { timeout: 90_000 }, async () => {
  const dataDir = tmpDir('sb-first-');
  const port = await freePort();
  const env = firstStartEnv(port, dataDir);
  // Ready once the start has said its piece (the token line on stderr comes before this log line).
  const first = await start(env, false, /admin token printed once on stderr/);
  const home = await fetch(`${first.publicUrl}/`, { redirect: 'manual' });
  assert.equal(home.status, 302, 'GET / is not a JSON 404');
  assert.equal(home.headers.get('location'), '/phone');
  assert.equal((await fetch(`${first.publicUrl}/`)).url, `${first.publicUrl}/phone`, 'following it lands on the softphone');
  await first.stop();
  for (const line of first.stdout().split('\n').filter((l) => l.length > 0)) {
    assert.doesNotThrow(() => JSON.parse(line), `stdout is JSON lines only, got: ${line}`);
  }
  assert.doesNotMatch(first.stdout(), /sbk_/, 'the token is not in the JSON log');
  const shown = [...first.stderr().matchAll(/admin token for admin@switchboard\.local \(shown once; only its hash is kept\): (sbk_\S+)/g)];
  assert.equal(shown.length, 1, `the token is on stderr once:\n${first.stderr()}`);

  const second = await start(env, false, /"recover"/);
  await second.stop();
  assert.doesNotMatch(second.stdout() + second.stderr(), /sbk_/);
  const hint = second
    .stdout()
    .split('\n')
    .filter((l) => l.includes('"recover"'))
    .map((l) => JSON.parse(l) as { recover: string; msg: string });
  assert.equal(hint.length, 1, 'a later start logs how to recover the token');
  assert.equal(hint[0]!.recover, `switchboard users token ${BOOTSTRAP_EMAIL} --data-dir ${dataDir}`);

  const minted = spawnSync(process.execPath, [BIN, 'users', 'token', BOOTSTRAP_EMAIL, '--data-dir', dataDir], { env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(minted.status, 0, minted.stderr);
  const recovered = minted.stdout.trim();
  assert.match(recovered, /^sbk_\S+$/, 'stdout is the token alone');
  assert.match(minted.stderr, /shown once/);
  const third = await start(env);
  assert.equal(await whoIs(third.publicUrl, recovered), BOOTSTRAP_EMAIL, 'the recovered token signs in as the admin');
  const lost = await api<{ tokens: { name: string; revoked_at: string | null }[] }>(third.publicUrl, 'GET', '/v1/tokens', { token: recovered });
  assert.ok(lost.body.tokens.some((t) => t.name === 'cli-recovery'), 'the new token is in the token list, revocable like any other');
});

test('users token refuses a running gateway\'s data dir, an unknown e-mail and a directory without a store, and creates nothing', { timeout: 60_000 }, async () => {
  const dataDir = tmpDir('sb-first-');
  const env = firstStartEnv(await freePort(), dataDir);
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'users', 'token', ...args], { env, encoding: 'utf8', timeout: 30_000 });
  const empty = tmpDir('sb-first-empty-');
  const none = run(BOOTSTRAP_EMAIL, '--data-dir', empty);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /holds no switchboard store/);
  const gw = await start(env);
  const busy = run(BOOTSTRAP_EMAIL, '--data-dir', dataDir);
  assert.equal(busy.status, 2);
  assert.match(busy.stderr, /stop it first/);
  await gw.stop();
  const unknown = run('nobody@example.com', '--data-dir', dataDir);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /no user nobody@example\.com/);
  assert.doesNotMatch(unknown.stdout, /sbk_/);
});
