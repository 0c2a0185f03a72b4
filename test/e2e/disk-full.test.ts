/**
 * A full disk under a live call, against the real `switchboard start` process
 * whose data dir is a small tmpfs (mounted inside a private mount namespace,
 * `unshare -m`): the test fills it during a Twilio call.
 *
 *  - refusal: the process stays up; /healthz answers `degraded` with the
 *    reason, /readyz 503; a new call gets the busy answer (<Reject
 *    reason="busy">); the live call's audio keeps flowing; its recording is
 *    marked failed with the reason;
 *  - recovery: the space is freed and the node recovers by itself — ready
 *    again, a new call admitted, the writes that waited commit (each API
 *    request made during the fault gets its answer), and `switchboard verify`
 *    passes on the hash chain;
 *  - restart: kill -9 while the disk is full, free it, start again: the call
 *    the fault left live is ended `gateway:disk_full`, its recording settled
 *    (failed, with the reason), stray working dirs removed, verify passes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { api } from '../helpers/api.ts';
import { freePort, spawnGateway, TWILIO_TOKEN, type GatewayProcess } from '../helpers/gateway.ts';
import { insidePrivateMounts, mountTmpfs } from '../helpers/mount.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const TIMEOUT = 300_000;
const NUMBER = '+15554441000';
const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');

if (insidePrivateMounts(import.meta.filename, TIMEOUT)) {
  const cleanup: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  /** A data dir on its own tmpfs of `size`; unmounted at the end. */
  const smallDisk = (size: string): string => {
    const dir = tmpDir('sb-df-');
    const refused = mountTmpfs(dir, size);
    if (refused) throw new Error(refused); // inside the namespace mounting works (the outer run checked)
    cleanup.push(() => void spawnSync('umount', ['-l', dir]));
    return dir;
  };

  async function seed(dataDir: string): Promise<void> {
    const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
    try {
      const who = { tenant: 'default', caller: 'test' };
      resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { ...who, id: 'bootstrap:tenant:default' }));
      const p = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'rec', disclosure_text: 'Recorded line.', mode: 'notify', timeout_ms: 3000, retries: 0 }, who));
      resultOf(await store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
    } finally {
      store.close();
    }
  }

  /** Fills the file system holding `dir` to the last byte; returns the filler's path. */
  function fill(dir: string): string {
    const file = path.join(dir, 'filler.bin');
    const fd = fs.openSync(file, 'a');
    try {
      for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
        const chunk = Buffer.alloc(size, 0xab);
        try {
          for (;;) fs.writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        }
      }
    } finally {
      fs.closeSync(fd);
    }
    return file;
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const health = async (gw: GatewayProcess) => {
    const h = await api<{ status: string; reason?: string }>(gw.publicUrl, 'GET', '/healthz', { token: null });
    const r = await api<{ status: string; reason?: string }>(gw.publicUrl, 'GET', '/readyz', { token: null });
    return { healthz: h, readyz: r };
  };

  function dialer(gw: GatewayProcess, from: string): TwilioPeer {
    const peer = new TwilioPeer({ publicUrl: gw.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from, redirectRetryMs: 60_000 });
    cleanup.push(() => peer.close());
    return peer;
  }

  /** Writes through the API, made while the disk is full: each must get its answer once the store recovers. */
  function apiWrite(gw: GatewayProcess, i: number) {
    return api<{ id: string }>(gw.publicUrl, 'POST', '/v1/consent-policies', {
      body: { name: `during-fault-${i}`, disclosure_text: `Policy ${i}: ${'this call is recorded. '.repeat(80)}`.slice(0, 2000), mode: 'notify', timeout_ms: 3000, retries: 0 },
    });
  }

  /** The disk fills during a call: keep writing (as a busy node does) until the store reports the fault. */
  async function fillUntilDegraded(gw: GatewayProcess, dataDir: string) {
    const filler = fill(dataDir);
    const writes: Array<ReturnType<typeof apiWrite>> = [];
    const h = await until('the store to report the full disk', async () => {
      writes.push(apiWrite(gw, writes.length));
      fill(dataDir); // whatever a checkpoint or the recorder freed is taken again
      const s = await health(gw);
      // Both answers read while the fault holds (a checkpoint that freed a page may let one write through between them).
      return s.healthz.body.status === 'degraded' && s.readyz.status === 503 ? s : undefined;
    });
    return { filler, writes, h };
  }

  const recordingOf = (dataDir: string) => {
    const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
    cleanup.push(() => store.close());
    return store;
  };

  const verifyCli = (dataDir: string) => spawnSync(process.execPath, [BIN, 'verify', '--data-dir', dataDir], { encoding: 'utf8', env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'silent' } });

  test('disk full during a live call: refused, degraded, the call goes on unrecorded; space freed: recovers by itself, nothing lost', { timeout: TIMEOUT }, async () => {
    const dataDir = smallDisk('48m');
    await seed(dataDir);
    const port = await freePort();
    const gw = await spawnGateway({ port, dataDir });
    cleanup.push(() => gw.stop());
    const live = dialer(gw, '+15550001001');
    assert.equal((await live.dial()).kind, 'streaming');
    await live.waitFor(() => live.receivedAudio().length > 8000, 20_000, 'the disclosure playing');
    await until('the recording to start', () => fs.existsSync(path.join(dataDir, 'recordings-work')) && fs.readdirSync(path.join(dataDir, 'recordings-work')).length === 1);

    const { filler, writes, h } = await fillUntilDegraded(gw, dataDir);
    assert.equal(gw.child.exitCode, null, 'the process is up');
    assert.equal(h.healthz.status, 200);
    assert.match(String(h.healthz.body.reason), /disk full/);
    assert.equal(h.readyz.status, 503);
    assert.equal(h.readyz.body.status, 'not_ready');
    assert.match(String(h.readyz.body.reason), /disk full/);

    const refused = dialer(gw, '+15550001002');
    assert.deepEqual(await refused.dial(), { kind: 'rejected' });
    assert.equal(refused.endDetail, 'busy', 'the new caller gets the busy answer');

    const before = live.receivedAudio().length;
    live.sendDtmf('4');
    await live.waitFor(() => live.receivedAudio().length > before + 16_000, 60_000, 'the live call’s audio still flowing');
    assert.equal(live.endReason, null, 'the live call is still up');

    fs.rmSync(filler);
    await until('ready again', async () => ((await health(gw)).readyz.status === 200 ? true : undefined));
    assert.equal((await health(gw)).healthz.body.status, 'ok');
    const answers = await Promise.all(writes);
    assert.ok(answers.every((a) => a.status === 201), `every write made during the fault committed: ${answers.map((a) => a.status).join(',')}`);
    const fresh = dialer(gw, '+15550001003');
    assert.equal((await fresh.dial()).kind, 'streaming', 'a new call is admitted');
    const written = await api(gw.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'after-fault', disclosure_text: 'Recorded.', mode: 'notify', timeout_ms: 3000, retries: 0 } });
    assert.equal(written.status, 201, 'writes go through');

    await fresh.hangup();
    await live.hangup();
    await until('both calls ended', async () => {
      const calls = await api<{ calls: Array<{ state: string }> }>(gw.publicUrl, 'GET', '/v1/calls');
      return calls.body.calls.filter((c) => c.state === 'ended').length === 2 ? true : undefined;
    });
    await gw.stop();
    assert.equal(gw.child.exitCode, 0, gw.logs.slice(-20).join('\n'));

    const v = verifyCli(dataDir);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /verify: OK/);
    const loose = (fs.readdirSync(dataDir, { recursive: true }) as string[]).filter((e) => (fs.lstatSync(path.join(dataDir, e)).mode & 0o077) !== 0);
    assert.deepEqual(loose, [], 'everything the gateway wrote in its data dir is private (0700 / 0600)');
    const store = recordingOf(dataDir);
    const calls = store.read('default').calls.find({});
    const first = calls.find((c) => c.from_uri === '+15550001001')!;
    assert.equal(first.end_reason, 'twilio:completed');
    const rec = store.read('default').recordings.find({ call_id: first.id })[0]!;
    assert.equal(rec.status, 'failed');
    assert.match(String(rec.failure), /disk full|ENOSPC|no space/i);
    assert.equal(store.read('default').consent_policies.find({}).filter((p) => p.name.startsWith('during-fault-')).length, writes.length, 'no committed command lost');
    assert.ok(store.replay().ok);
  });

  test('restart after a fault the node never recovered from: the call it left live is ended with a reason, its recording settled, stray dirs cleaned', { timeout: TIMEOUT }, async () => {
    const dataDir = smallDisk('48m');
    await seed(dataDir);
    const port = await freePort();
    let gw = await spawnGateway({ port, dataDir });
    cleanup.push(() => gw.stop());
    const live = dialer(gw, '+15550002001');
    assert.equal((await live.dial()).kind, 'streaming');
    await live.waitFor(() => live.receivedAudio().length > 8000, 20_000, 'the disclosure playing');
    await until('the recording to start', () => fs.existsSync(path.join(dataDir, 'recordings-work')) && fs.readdirSync(path.join(dataDir, 'recordings-work')).length === 1);
    const { filler, writes } = await fillUntilDegraded(gw, dataDir);
    for (const w of writes) w.catch(() => undefined); // in flight when the process is killed: never answered
    await gw.kill9();
    live.close();

    fs.rmSync(filler);
    // What an interrupted run leaves: a working dir no recording owns, and an encoder's temp dir.
    const work = path.join(dataDir, 'recordings-work');
    const [recDir] = fs.readdirSync(work);
    fs.mkdirSync(path.join(work, 'rec_stray0000000000'), { recursive: true });
    fs.writeFileSync(path.join(work, 'rec_stray0000000000', 'segment-0000.pcm'), Buffer.alloc(1024));
    fs.mkdirSync(path.join(work, recDir!, '.encode-abc123'));
    gw = await spawnGateway({ port, dataDir });
    assert.ok(gw.logs.some((l) => /stopped while the store could not write: 1 call\(s\) it left live ended with gateway:disk_full/.test(l)), gw.logs.join('\n').slice(-3000));
    const calls = await api<{ calls: Array<{ id: string; state: string; end_reason: string | null }> }>(gw.publicUrl, 'GET', '/v1/calls');
    assert.deepEqual(calls.body.calls.map((c) => [c.state, c.end_reason]), [['ended', 'gateway:disk_full']]);
    assert.equal((await health(gw)).readyz.status, 200);
    await gw.stop();

    assert.deepEqual(fs.readdirSync(work).sort(), [recDir], 'the stray working dir is gone; the failed recording keeps what it flushed');
    assert.deepEqual(fs.readdirSync(path.join(work, recDir!)).filter((n) => n.startsWith('.encode-')), []);
    const store = recordingOf(dataDir);
    const rec = store.read('default').recordings.find({})[0]!;
    assert.equal(rec.status, 'failed', 'settled: failed, with the reason (the recorder\'s own ENOSPC, or the fault recovery\'s)');
    assert.match(String(rec.failure), /disk full|ENOSPC|no space/i);
    assert.ok(store.verify().ok && store.replay().ok);
  });
}
