/**
 * The log level (schema/log-level.ts): the level each build supports rides in its heartbeat's version; the
 * cluster's level is raised only once every alive or draining node supports it; a level-2 reducer change applies
 * only from the raise on; NodeOwnership raises it after a heartbeat and tells a build below the level to stop.
 * Nodes are one data dir opened in turn under several names (each command carries its node); time is the store's
 * injected clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { NodeOwnership } from '../../../bridge/ownership.ts';
import { LOG_LEVEL, levelRefusal, packageVersion, supportedLevel, versionWithLevel } from '../../../schema/log-level.ts';
import { log_level_raised, node_heartbeat, node_stopped } from '../../../schema/reducers.ts';
import { schema } from '../../../schema/index.ts';
import { resolveDurability, Store } from '../../../store/index.ts';
import { resultOf } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const OPS = { tenant: 'default', caller: 'system:node' };
const LEASE = 3_000;
const logger = pino({ level: 'silent' });

function asNode(dir: string, node: string, now: { t: number }) {
  return Store.open({ dataDir: dir, schema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0, node, clock: () => now.t });
}

test('the supported level is semver build metadata on the version; none (a build before the gate) is level 1', () => {
  assert.equal(LOG_LEVEL, 2);
  assert.equal(versionWithLevel('0.1.0'), '0.1.0+log.2');
  assert.equal(versionWithLevel('0.1.0+build.7', 3), '0.1.0+build.7.log.3');
  assert.equal(supportedLevel('0.1.0+log.2'), 2);
  assert.equal(supportedLevel('0.1.0+build.7.log.3'), 3);
  assert.equal(supportedLevel('0.1.0'), 1);
  assert.equal(supportedLevel('0.1.0-log.2'), 1, 'a prerelease tag is not the level');
  assert.equal(packageVersion('0.1.0+log.2'), '0.1.0');
  assert.equal(packageVersion('0.1.0+build.7.log.3'), '0.1.0+build.7');
  assert.match(levelRefusal('node-a', { level: 3, raised_seq: 42, raised_by: 'node-b' }, 2), /^node node-a runs a build of log level 2, but the cluster's log is at level 3 \(raised at seq 42 by node node-b\)/);
});

test('log_level_raised: refused naming the alive or draining nodes that do not support it, granted once they stopped, then a no-op', async () => {
  const dir = tmpDir();
  const now = { t: 1_000_000 };
  let s = asNode(dir, 'node-old', now);
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: '0.1.0', boot: true }, OPS);
  s.close();
  s = asNode(dir, 'node-new', now);
  await s.submit(node_heartbeat, { lease_ms: LEASE, version: versionWithLevel('0.1.0'), boot: true }, OPS);
  const refused = await s.submit(log_level_raised, { to: 2 }, OPS);
  assert.equal(refused.outcome.ok, false);
  if (!refused.outcome.ok) {
    assert.equal(refused.outcome.error.code, 'log_level_unsupported');
    assert.match(refused.outcome.error.message, /node-old \(alive, supports 1\)/);
    assert.doesNotMatch(refused.outcome.error.message, /node-new/);
  }
  assert.equal(s.read(null).log_levels.get('cluster'), undefined, 'no row: level 1');
  s.close();

  s = asNode(dir, 'node-old', now);
  resultOf(await s.submit(node_stopped, { reason: 'drained for an upgrade' }, OPS));
  s.close();
  s = asNode(dir, 'node-new', now);
  const raised = resultOf(await s.submit(log_level_raised, { to: 2 }, OPS));
  assert.deepEqual(raised, { level: 2, raised: true, from: 1 });
  const row = s.read(null).log_levels.get('cluster');
  assert.equal(row?.level, 2);
  assert.equal(row?.raised_by, 'node-new');
  assert.equal(row?.raised_at, 1_000_000);
  assert.deepEqual(resultOf(await s.submit(log_level_raised, { to: 2 }, OPS)), { level: 2, raised: false, from: 2 });
  s.close();
});

test('level 2: a node marked lost names the node whose heartbeat said so; at level 1 the reason is as before', async () => {
  const dir = tmpDir();
  const now = { t: 2_000_000 };
  const beat = async (node: string) => {
    const s = asNode(dir, node, now);
    const r = resultOf(await s.submit(node_heartbeat, { lease_ms: LEASE, version: versionWithLevel('0.1.0') }, OPS));
    s.close();
    return r;
  };
  await beat('node-a');
  await beat('node-b');
  now.t += LEASE;
  assert.deepEqual((await beat('node-b')).lost, ['node-a']);
  let s = asNode(dir, 'node-b', now);
  assert.equal(s.read(null).nodes.get('node-a')?.down_reason, `lease expired at ${2_000_000 + LEASE} ms since epoch`);
  resultOf(await s.submit(log_level_raised, { to: 2 }, OPS)); // node-a is lost: it does not hold the level back
  s.close();
  await beat('node-a'); // back (it was paused)
  now.t += 2 * LEASE;
  assert.deepEqual((await beat('node-a')).lost, ['node-b']);
  s = asNode(dir, 'node-a', now);
  assert.equal(s.read(null).nodes.get('node-b')?.down_reason, `lease expired at ${2_000_000 + 2 * LEASE} ms since epoch (seen by node-a)`);
  s.close();
});

test('NodeOwnership raises the level once every live node supports it, and tells a build below it to stop', async (t) => {
  const dir = tmpDir();
  const now = { t: 3_000_000 };
  const open: Array<{ own: NodeOwnership; store: Store<typeof schema.tables> }> = [];
  t.after(async () => {
    for (const o of open) {
      await o.own.stop();
      o.store.close();
    }
  });
  const start = async (node: string, logLevel: number, onLevelAbove?: (line: string) => void) => {
    const store = asNode(dir, node, now) as Store<typeof schema.tables>;
    const own = new NodeOwnership({ store, sessions: { get: () => undefined }, cluster: true, leaseMs: 60_000, version: '0.1.0', logger, logLevel, ...(onLevelAbove ? { onLevelAbove } : {}) });
    await own.start();
    open.push({ own, store });
    return { own, store };
  };
  /** Stops heartbeating (with `reason`: recorded stopped; without, the row stays alive, as after a crash). */
  const stopNode = async (o: { own: NodeOwnership; store: Store<typeof schema.tables> }, reason?: string) => {
    await o.own.stop(reason);
    o.store.close();
    open.splice(open.indexOf(o), 1);
  };
  const level = () => {
    const s = asNode(dir, 'probe', now);
    const l = s.read(null).log_levels.get('cluster')?.level ?? 1;
    s.close();
    return l;
  };
  // An older build (level 1) still alive: a newer one does not raise the level.
  await stopNode(await start('node-a', 1));
  await stopNode(await start('node-b', 2));
  assert.equal(level(), 1);
  // The older one drained and stopped: the newer one's next heartbeat raises it.
  await stopNode(await start('node-a', 1), 'drained for an upgrade');
  await stopNode(await start('node-b', 2));
  assert.equal(level(), 2);
  // A build of level 1 that comes back is told to stop, once, with the line.
  const lines: string[] = [];
  await start('node-c', 1, (line) => lines.push(line));
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /^node node-c runs a build of log level 1, but the cluster's log is at level 2/);
  const c = open[open.length - 1];
  if (c) await stopNode(c);
  assert.equal(level(), 2, 'an older build never lowers the level');
});
