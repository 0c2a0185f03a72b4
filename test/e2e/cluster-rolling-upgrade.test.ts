/**
 * A rolling upgrade under live calls, with real old code (issue 15: "Rolling upgrade of both nodes during 10 live
 * calls (each node restarted in turn): every call continues"; schema/log-level.ts).
 *
 *   git worktree of OLD_COMMIT (its own dist) ─► node-a, node-b: `switchboard start` of the OLD code
 *   3 nats-server (one log) · HAProxy in front (cli/cluster/balancers.ts) · 10 Twilio calls through it
 *   for each node in turn (the one carrying the calls first, so every call moves twice):
 *     SIGTERM ─► draining (readyz 503) ─► at SWITCHBOARD_DRAIN_TIMEOUT_MS node_stopped, media closed ─► exit 0
 *     each peer's <Redirect> through HAProxy lands on the other node, which takes the call (its owner stopped)
 *     start it again with THIS checkout's code on the same data dir and port
 *
 * Asserted: every call continues (each peer gets a new stream and hears audio again after each move; one call row
 * each, none ended); while an old and a new node run together the cluster's log level stays 1; once both run the
 * new code it becomes 2; `verify` passes on both data dirs on one hash chain, and `replay` (the new code
 * rebuilding each data dir from its log, old code's commands included) finds the same outcomes and tables.
 * Bounded event waits only; nothing about durations.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { stopGroup, type Child } from '../../cli/cluster/processes.ts';
import { schema } from '../../schema/index.ts';
import { Store } from '../../store/index.ts';
import { api } from '../helpers/api.ts';
import { eventually } from '../helpers/cluster-up.ts';
import { freePort, spawnGateway, TWILIO_TOKEN, type GatewayProcess } from '../helpers/gateway.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

/**
 * The old version: the last commit before the log level (schema/log-level.ts) — the merge of the WebRTC failover
 * work, whose heartbeats carry a plain package version (log level 1) and which has no `log_level_raised`. Needs the
 * repository's history (a shallow clone without it cannot run this test).
 */
const OLD_COMMIT = '9d873efcbf8e00004d40b2b25f29ea08a78a20d4';
const ROOT = path.join(import.meta.dirname, '..', '..');
const NEW_BIN = path.join(ROOT, 'bin', 'switchboard.mjs');
const CALLS = 10;
const NUMBER = '+15550109999';
const NODES = ['node-a', 'node-b'] as const;
type NodeId = (typeof NODES)[number];

const oldTree = tmpDir('sb-roll-old-');
let nats: NatsCluster | null = null;
let haproxy: Child | null = null;
const running = new Map<NodeId, GatewayProcess>();
const peers: TwilioPeer[] = [];

function git(args: string[]): string {
  const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The old commit is in this clone (a shallow clone lacks it: the test is skipped, saying why). */
const HAS_OLD = spawnSync('git', ['cat-file', '-e', `${OLD_COMMIT}^{commit}`], { cwd: ROOT }).status === 0;

before(() => {
  if (!HAS_OLD) return;
  fs.rmSync(oldTree, { recursive: true, force: true });
  git(['worktree', 'add', '--detach', oldTree, OLD_COMMIT]);
  fs.symlinkSync(fs.realpathSync(path.join(ROOT, 'node_modules')), path.join(oldTree, 'node_modules'));
  // Its own build, so its bin runs its own code (a build made by its own scripts/build.mjs).
  const b = spawnSync(process.execPath, [path.join(oldTree, 'scripts', 'build.mjs')], { cwd: oldTree, encoding: 'utf8', timeout: 300_000 });
  assert.equal(b.status, 0, `the old version's build failed: ${b.stderr}`);
});

after(async () => {
  for (const p of peers) await p.close().catch(() => undefined);
  await Promise.all([...running.values()].map((g) => g.stop()));
  if (haproxy) await stopGroup(haproxy, 5000);
  await nats?.stop();
  if (HAS_OLD) spawnSync('git', ['worktree', 'remove', '--force', oldTree], { cwd: ROOT });
  fs.rmSync(oldTree, { recursive: true, force: true });
});

interface NodesView {
  log_level?: number;
  nodes: Array<{ id: string; state: string; version: string; log_level?: number }>;
}

async function nodesOf(g: GatewayProcess): Promise<NodesView> {
  const r = await api<NodesView>(g.publicUrl, 'GET', '/v1/cluster/nodes');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

function one(id: NodeId): GatewayProcess {
  const g = running.get(id);
  assert.ok(g, `${id} runs`);
  return g;
}

function cli(args: string[], dataDir: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [NEW_BIN, ...args], {
    env: { ...process.env, SWITCHBOARD_DATA_DIR: dataDir, SWITCHBOARD_LOG_LEVEL: 'error', SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'none' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('rolling upgrade of both nodes from real old code during live Twilio calls: every call continues; the log level rises once both are new', { timeout: 600_000, skip: HAS_OLD ? false : `the old version (commit ${OLD_COMMIT.slice(0, 7)}) is not in this clone: a shallow clone has no history to run it from` }, async () => {
  nats = await startNatsCluster(3);
  const ports = { 'node-a': await freePort(), 'node-b': await freePort() };
  const dirs = { 'node-a': tmpDir('sb-roll-a-'), 'node-b': tmpDir('sb-roll-b-') };
  const lbPort = await freePort();
  const lbUrl = `http://127.0.0.1:${lbPort}`;
  const start = async (id: NodeId, bin: string) => {
    const g = await spawnGateway({
      port: ports[id],
      dataDir: dirs[id],
      bin,
      logLevel: 'info',
      env: {
        SWITCHBOARD_CLUSTER_NATS: nats!.env,
        SWITCHBOARD_NODE_ID: id,
        SWITCHBOARD_PUBLIC_URL: lbUrl,
        SWITCHBOARD_CLUSTER_LEASE_MS: '3000',
        SWITCHBOARD_DRAIN_TIMEOUT_MS: '2000',
        SWITCHBOARD_STT: 'none',
        SWITCHBOARD_FSYNC_POLICY: 'periodic',
      },
    });
    running.set(id, g);
    return g;
  };
  const oldBin = path.join(oldTree, 'bin', 'switchboard.mjs');
  for (const id of NODES) await start(id, oldBin);
  // The old release's HAProxy config, as a deployment being rolled has it: the old code's media tokens are known only
  // to the node that issued them, so its config keeps affinity (`balance source`). It stays for the whole roll.
  const { startHaproxy } = (await import(path.join(oldTree, 'cli', 'cluster', 'balancers.ts'))) as typeof import('../../cli/cluster/balancers.ts');
  const lbDir = tmpDir('sb-roll-lb-');
  await startHaproxy(
    lbDir,
    '127.0.0.1',
    lbPort,
    NODES.map((id) => ({ id, host: '127.0.0.1', httpPort: ports[id], sipPort: 0 })),
    (c) => (haproxy = c),
  );
  const before0 = await nodesOf(one('node-a'));
  assert.equal(before0.log_level, undefined, 'the old code knows no log level');
  assert.deepEqual(before0.nodes.map((n) => n.version).filter((v) => v.includes('+log.')), [], 'old heartbeats carry no level');

  const number = await api(one('node-a').publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', provider: 'twilio' } });
  assert.equal(number.status, 201, JSON.stringify(number.body));
  for (let i = 0; i < CALLS; i++) {
    const p = new TwilioPeer({ publicUrl: lbUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: `+1555000${String(3000 + i)}`, redirectRetryMs: 60_000 });
    peers.push(p);
    assert.equal((await p.dial()).kind, 'streaming', `call ${i} streams`);
  }
  for (const [i, p] of peers.entries()) await p.waitFor(() => p.receivedAudio().length > 4000, 60_000, `call ${i} hears audio`);
  // The audio received when each peer's latest stream started: what comes after it came from that stream's node.
  const atStream = peers.map((p) => p.receivedAudio().length);
  peers.forEach((p, i) => p.on('stream', () => (atStream[i] = p.receivedAudio().length)));
  const logsOf = (needle: string): string =>
    [...running.entries()].map(([id, g]) => `${id}:\n${g.logs.filter((l) => l.includes(needle)).slice(-15).join('\n')}`).join('\n');

  // The node carrying the calls goes first (the old HAProxy config balances by source: one node has them all), so
  // each call moves twice: to the other (old) node, then back to this one (new).
  const listed = await api<{ calls: Array<{ id: string; owner_node: string | null; state: string }> }>(one('node-a').publicUrl, 'GET', '/v1/calls');
  const owners = new Set(listed.body.calls.map((c) => c.owner_node));
  const first: NodeId = owners.has('node-b') && !owners.has('node-a') ? 'node-b' : 'node-a';
  const order: NodeId[] = first === 'node-a' ? ['node-a', 'node-b'] : ['node-b', 'node-a'];

  for (const [step, id] of order.entries()) {
    const other = order[1 - step] as NodeId;
    const mark = peers.map((p) => ({ streams: p.streams }));
    const g = one(id);
    const exited = new Promise<number | null>((r) => g.child.once('exit', (code) => r(code)));
    g.child.kill('SIGTERM');
    assert.equal(await exited, 0, `${id} drained and exited 0:\n${g.logs.slice(-20).join('\n')}`);
    running.delete(id);
    // Every call moved (a new stream, on the other node) and its audio flows again there.
    for (const [i, p] of peers.entries()) {
      const m = mark[i]!;
      await p.waitFor(() => p.streams > m.streams, 90_000, `call ${i} resumes after ${id} drained`).catch((err: unknown) => {
        assert.fail(`${String(err)} (peer: streams ${p.streams}, ended ${String(p.endReason)} ${p.endDetail}); logs on ${p.callSid}:\n${logsOf(p.callSid)}`);
      });
      await p.waitFor(() => p.receivedAudio().length > (atStream[i] ?? 0) + 4000, 60_000, `call ${i} hears audio again after ${id} drained`);
      assert.equal(p.endReason, null, `call ${i} goes on`);
    }
    type Listed = { calls: Array<{ id: string; owner_node: string | null; state: string }> };
    let moved: Listed['calls'] = [];
    await eventually(`every call owned by ${other}`, 30_000, async () => {
      moved = (await api<Listed>(one(other).publicUrl, 'GET', '/v1/calls')).body.calls;
      return moved.length === CALLS && moved.every((c) => c.owner_node === other);
    }).catch((err: unknown) => assert.fail(`${String(err)}: ${JSON.stringify(moved)}\n${logsOf('CA')}`));
    await start(id, NEW_BIN);
    const view = await nodesOf(one(id));
    if (step === 0) {
      // Mixed versions: the new node says it supports 2, the old one does not, and the level stays 1.
      assert.equal(view.log_level, 1);
      assert.equal(view.nodes.find((n) => n.id === id)?.log_level, 2);
      assert.equal(view.nodes.find((n) => n.id === other)?.log_level, 1);
      assert.equal(view.nodes.find((n) => n.id === other)?.state, 'alive');
    }
  }
  // Both new: the level is raised (by the first heartbeat that sees every live node support it).
  for (const id of NODES) await eventually(`${id} applies log level 2`, 60_000, async () => (await nodesOf(one(id))).log_level === 2);

  // One row per call, none ended; then each is hung up.
  const rows = await api<{ calls: Array<{ state: string }> }>(one('node-a').publicUrl, 'GET', '/v1/calls');
  assert.equal(rows.body.calls.length, CALLS, 'one call row per call');
  assert.deepEqual(
    rows.body.calls.filter((c) => c.state === 'ended'),
    [],
    'no call ended',
  );
  for (const p of peers) await p.hangup();

  // Stop both (one after the other), then the new code checks each data dir.
  await one('node-b').stop();
  running.delete('node-b');
  await one('node-a').stop();
  running.delete('node-a');
  const heads = NODES.map((id) => {
    const r = cli(['verify'], dirs[id]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /verify: OK/);
    const replay = cli(['replay'], dirs[id]);
    assert.equal(replay.code, 0, replay.out);
    assert.match(replay.out, /replay: OK/);
    const head = /head: (\d+) ([0-9a-f]{64})/.exec(r.out);
    assert.ok(head, r.out);
    return { seq: Number(head[1]), hash: head[2] as string };
  });
  // node-b stopped first: its head is node-a's event at that seq (one chain).
  const [a, b] = heads as [{ seq: number; hash: string }, { seq: number; hash: string }];
  assert.ok(b.seq <= a.seq);
  const copyA = Store.open({ dataDir: dirs['node-a'], schema, checkpointMs: 0 });
  try {
    const [atB] = [...copyA.events(b.seq, b.seq)];
    assert.equal(atB?.hash, b.hash, `node-a's log holds node-b's head ${b.seq} ${b.hash}`);
  } finally {
    copyA.close();
  }
});
