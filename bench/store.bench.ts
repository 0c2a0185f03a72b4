/**
 * Store write path: durable commands/s and per-command commit latency
 * (submit → promise resolved, i.e. after COMMIT returned) for fsync `always`
 * and `periodic`, with 1 and 64 concurrent submitters, beside raw
 * better-sqlite3 doing the same two inserts per command in the same run.
 *
 *   command   = `call_received` (inserts a `calls` row + the `_events` row)
 *   store     = Store.open(production profile, fsync always|periodic, checkpointMs 0)
 *   raw (a)   = one transaction per command        → baseline for c1
 *   raw (b)   = one transaction per 64 commands     → baseline for c64
 *
 * Raw uses the same file pragmas (WAL, locking_mode EXCLUSIVE, synchronous
 * FULL for always / NORMAL for periodic, same cache size) and the same DDL
 * (the `calls` table with its indexes, the `_events` table with the schema's
 * derived indexes on it), with pre-made values: no validation, no canonical
 * JSON, no hashing.
 *
 * Targets (issue): fsync always, 64 submitters: ≥ 50,000 cmd/s, p99 ≤ 5 ms,
 * and ≥ 0.5× the raw batched rate.
 *
 * Cluster mode (`store.cluster_r3.*`): the same commands through the JetStream log on a 3-server NATS cluster
 * started here (stream R3), 1 and 64 submitters, beside the embedded store (fsync periodic) of the same run.
 *
 * Content sealing (`store.content_sealed.*`, bench/store-content.ts): transcript commands with the gateway's sealer
 * beside the plain store, same run; target ≥ 0.9×.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { schema } from '../schema/index.ts';
import { deterministicId } from '../store/applier.ts';
import { resolveDurability, Store, type FsyncPolicy } from '../store/index.ts';
import { LOG_DDL } from '../store/log.ts';
import { derivedDdl } from '../store/derived.ts';
import { tableDdl, type AnyTableDef } from '../store/table.ts';
import { tables } from '../schema/tables.ts';
import { collectGarbage, fmt, log, now, report, Samples, wanted } from './lib.ts';
import { call_received, tenant_created } from '../schema/reducers.ts';
import type { ClusterOptions } from '../store/jetstream-log.ts';
import { NATS_SERVER, startNatsCluster } from '../test/helpers/nats-cluster.ts';
import { contentSection } from './store-content.ts';

const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 500);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 3000);
const BATCH = 64;
const OPTS = { tenant: 'acme', caller: 'bench' };

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-'));
}

interface Measured {
  cmdsPerS: number;
  lat: Samples;
  completed: number;
  /** Bytes handed to write(2) per command over the whole run (warm-up included); null off Linux. */
  writeBytesPerCmd: number | null;
}

/** Bytes this process passed to write(2) so far (Linux /proc/self/io `wchar`), or null. */
function writtenBytes(): number | null {
  try {
    const m = /^wchar:\s*(\d+)/m.exec(fs.readFileSync('/proc/self/io', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function perCmd(w0: number | null, total: number): number | null {
  const w1 = writtenBytes();
  return w0 === null || w1 === null || total === 0 ? null : (w1 - w0) / total;
}

// ───────────────────────────── raw better-sqlite3 ─────────────────────────────

/** The same ids the store's reducers mint (seq-ordered, so raw and store insert at the same B-tree positions). */
function rawCallId(i: number): string {
  return deterministicId('call', i, 0, `cmd-${i}`);
}

/**
 * The DDL the store itself creates for the two tables a `call_received` writes: `calls` with its indexes, the
 * `_events` log, and the schema's derived indexes on either (the log's call-subject expression indexes), so
 * raw maintains exactly the B-trees the store maintains.
 */
function rawDdl(): string[] {
  const defs = new Map(Object.values(tables).map((def) => [def.name, def as AnyTableDef]));
  const derived = (schema.derived ?? []).filter((d) => d.kind === 'log' || d.table === 'calls').flatMap((d) => derivedDdl(d, defs));
  return [...tableDdl(tables.calls), ...LOG_DDL, ...derived];
}

function openRaw(dir: string, fsync: FsyncPolicy) {
  const durability = resolveDurability({ profile: 'production', fsync });
  const db = new Database(path.join(dir, 'raw.db'));
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('journal_mode = WAL');
  // Raw syncs inside COMMIT (FULL) for `always`: the same guarantee the store gives, the plain way.
  db.pragma(`synchronous = ${fsync === 'always' ? 'FULL' : durability.synchronous}`);
  db.pragma(`cache_size = -${durability.cacheKiB}`);
  db.pragma('foreign_keys = OFF');
  for (const sql of rawDdl()) db.exec(sql);

  const cols = tables.calls.columns.map((c) => c.name);
  const insertCall = db.prepare(
    `INSERT INTO calls (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
  );
  const insertEvent = db.prepare(
    `INSERT INTO _events (seq, id, ts, node, tenant, caller, reducer, args, outcome, prev_hash, hash)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const ts = Date.now();
  const template: Record<string, string | number | null> = {
    id: '',
    tenant: 'acme',
    provider: 'twilio',
    provider_call_id: '',
    number_id: null,
    from_uri: '+15551230000',
    to_uri: '+15559870000',
    direction: 'inbound',
    state: 'ringing',
    resume_state: null,
    owner_node: 'bench',
    agent: null,
    agent_version: null,
    consent_id: null,
    media_epoch: 0,
    received_at: ts,
    answered_at: null,
    active_at: null,
    ended_at: null,
    end_reason: null,
    updated_at: ts,
  };
  const base = cols.map((c) => (c in template ? template[c] : null)) as Array<string | number | null>;
  const idIdx = cols.indexOf('id');
  const pcIdx = cols.indexOf('provider_call_id');
  const args =
    '{"agent":null,"direction":"inbound","from":"+15551230000","number_id":null,"provider":"twilio","provider_call_id":"pc-0000000","to":"+15559870000"}';
  const hash = 'a'.repeat(64);
  let seq = 0;

  const insertOne = (): void => {
    const i = ++seq;
    const row = base.slice();
    const id = rawCallId(i);
    row[idIdx] = id;
    row[pcIdx] = `pc-${i}`;
    insertCall.run(row);
    // The outcome names the new call, as the store's does (its expression index then sees distinct keys).
    const outcome = `{"ok":true,"result":{"call_id":"${id}","existing":false,"state":"ringing"}}`;
    insertEvent.run(i, `cmd-${i.toString().padStart(32, '0')}`, ts, 'bench', 'acme', 'bench', 'call_received', args, outcome, hash, hash);
  };
  const txn = db.transaction((n: number) => {
    for (let k = 0; k < n; k++) insertOne();
  });
  return { db, txn };
}

/** Commits transactions of `perTxn` commands back-to-back; latency is per transaction. */
function runRaw(fsync: FsyncPolicy, perTxn: number): Measured {
  const dir = tempDir();
  const { db, txn } = openRaw(dir, fsync);
  try {
    const lat = new Samples();
    const w0 = writtenBytes();
    const t0 = now();
    const measureStart = t0 + WARMUP_MS;
    const end = measureStart + MEASURE_MS;
    let completed = 0;
    let total = 0;
    for (;;) {
      const s = now();
      if (s >= end) break;
      txn(perTxn);
      total += perTxn;
      const e = now();
      if (s >= measureStart) lat.push(e - s);
      if (e >= measureStart && e < end) completed += perTxn;
    }
    return { cmdsPerS: completed / (MEASURE_MS / 1000), lat, completed, writeBytesPerCmd: perCmd(w0, total) };
  } finally {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ─────────────────────────────────── store ───────────────────────────────────

async function runStore(fsync: FsyncPolicy, concurrency: number, tag: string, cluster?: ClusterOptions): Promise<Measured> {
  const dir = tempDir();
  const opts = { dataDir: dir, schema, durability: resolveDurability({ profile: 'production', fsync }), checkpointMs: 0, node: 'bench' };
  const store = cluster ? await Store.openCluster({ ...opts, cluster }) : Store.open(opts);
  try {
    const t = await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, OPTS);
    if (!t.outcome.ok) throw new Error(`tenant_created failed: ${JSON.stringify(t.outcome)}`);
    const lat = new Samples();
    let completed = 0;
    let failed = 0;
    let firstFailure = '';
    let n = 0;
    const w0 = writtenBytes();
    const t0 = now();
    const measureStart = t0 + WARMUP_MS;
    const end = measureStart + MEASURE_MS;
    const loop = async (): Promise<void> => {
      for (;;) {
        const s = now();
        if (s >= end) return;
        const i = ++n;
        const r = await store.submit(
          call_received,
          { provider: 'twilio', provider_call_id: `${tag}-${i}`, from: '+15551230000', to: '+15559870000' },
          OPTS,
        );
        const e = now();
        if (!r.outcome.ok) {
          failed++;
          firstFailure ||= JSON.stringify(r.outcome);
        }
        if (s >= measureStart) lat.push(e - s);
        if (e >= measureStart && e < end) completed++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    if (failed > 0) throw new Error(`${failed} call_received commands were rejected, e.g. ${firstFailure}`);
    return { cmdsPerS: completed / (MEASURE_MS / 1000), lat, completed, writeBytesPerCmd: perCmd(w0, n) };
  } finally {
    store.close();
    await store.whenClosed();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ─────────────────────────────────── main ────────────────────────────────────

function describe(label: string, m: Measured): void {
  const s = m.lat.summary();
  log(
    `  ${label.padEnd(34)} ${fmt(m.cmdsPerS).padStart(9)} cmd/s   p50 ${fmt(s.p50)} ms   p99 ${fmt(s.p99)} ms   max ${fmt(s.max)} ms   ` +
      `(n=${s.n}${m.writeBytesPerCmd === null ? '' : `, ${fmt(m.writeBytesPerCmd / 1024)} KiB written/cmd`})`,
  );
}

function figuresFor(fsync: FsyncPolicy): string[] {
  const p = `store.fsync_${fsync}`;
  return ['c1', 'c64'].flatMap((c) =>
    [`${p}.${c}.cmds_per_s`, `${p}.${c}.p50_ms`, `${p}.${c}.p99_ms`, `${p}.${c}.write_kib_per_cmd`].concat(
      c === 'c64' ? [`${p}.c64.ratio_to_raw`] : [],
    ),
  );
}

async function section(fsync: FsyncPolicy): Promise<{ c1: Measured; c64: Measured } | null> {
  if (!wanted(figuresFor(fsync))) return null;
  const p = `store.fsync_${fsync}`;
  const strict = fsync === 'always';
  log(`fsync ${fsync} (warm-up ${WARMUP_MS} ms, measure ${MEASURE_MS} ms each)`);

  // Each store run right after its baseline, so drift in the machine's I/O load hits both alike.
  collectGarbage();
  const raw1 = runRaw(fsync, 1);
  describe('raw better-sqlite3, 1 cmd/txn', raw1);
  collectGarbage();
  const c1 = await runStore(fsync, 1, `${fsync}-c1`);
  describe('store, 1 submitter', c1);
  collectGarbage();
  const raw64 = runRaw(fsync, BATCH);
  describe(`raw better-sqlite3, ${BATCH} cmds/txn`, raw64);
  collectGarbage();
  const c64 = await runStore(fsync, 64, `${fsync}-c64`);
  describe('store, 64 submitters', c64);

  const r1 = raw1.lat.summary();
  const r64 = raw64.lat.summary();
  const s1 = c1.lat.summary();
  const s64 = c64.lat.summary();

  report({ figure: `${p}.c1.cmds_per_s`, value: c1.cmdsPerS, unit: 'cmd/s', baseline: raw1.cmdsPerS });
  report({ figure: `${p}.c1.p50_ms`, value: s1.p50, unit: 'ms', baseline: r1.p50 });
  report({ figure: `${p}.c1.p99_ms`, value: s1.p99, unit: 'ms', baseline: r1.p99 });
  writeFigure(`${p}.c1.write_kib_per_cmd`, c1, raw1);
  report({
    figure: `${p}.c64.cmds_per_s`,
    value: c64.cmdsPerS,
    unit: 'cmd/s',
    baseline: raw64.cmdsPerS,
    target: strict ? { op: '>=', value: 50_000, unit: 'cmd/s' } : null,
  });
  report({
    figure: `${p}.c64.ratio_to_raw`,
    value: c64.cmdsPerS / raw64.cmdsPerS,
    unit: 'x',
    target: strict ? { op: '>=', value: 0.5 } : null,
  });
  report({ figure: `${p}.c64.p50_ms`, value: s64.p50, unit: 'ms', baseline: r64.p50 });
  report({
    figure: `${p}.c64.p99_ms`,
    value: s64.p99,
    unit: 'ms',
    baseline: r64.p99,
    target: strict ? { op: '<=', value: 5, unit: 'ms' } : null,
  });
  writeFigure(`${p}.c64.write_kib_per_cmd`, c64, raw64);
  return { c1, c64 };
}

const CLUSTER_FIGURES = ['c1', 'c64'].flatMap((c) => [`store.cluster_r3.${c}.cmds_per_s`, `store.cluster_r3.${c}.p50_ms`, `store.cluster_r3.${c}.p99_ms`]);

/**
 * Cluster mode (store/jetstream-log.ts) on a 3-server NATS cluster on this machine, stream R3, each node's SQLite
 * with fsync periodic (the log's durability is JetStream's quorum): latency = submit → applied on the submitting
 * node. The baseline of each figure is the embedded store's (fsync periodic) from this same run.
 */
async function clusterSection(embedded: { c1: Measured; c64: Measured } | null): Promise<void> {
  if (!wanted(CLUSTER_FIGURES)) return;
  if (!fs.existsSync(NATS_SERVER)) {
    log(`cluster (R3): skipped, ${NATS_SERVER} is missing (apt-get install nats-server)`);
    return;
  }
  log(`cluster, JetStream R3 on 3 local nats-server, node fsync periodic (warm-up ${WARMUP_MS} ms, measure ${MEASURE_MS} ms each)`);
  const nats = await startNatsCluster(3);
  try {
    for (const [c, concurrency] of [['c1', 1], ['c64', 64]] as const) {
      collectGarbage();
      const m = await runStore('periodic', concurrency, `cluster-${c}`, { servers: nats.urls, stream: `BENCH_${c.toUpperCase()}`, replicas: 3 });
      describe(`cluster R3, ${concurrency} submitter${concurrency > 1 ? 's' : ''}`, m);
      const base = embedded?.[c];
      const s = m.lat.summary();
      const b = base?.lat.summary();
      report({ figure: `store.cluster_r3.${c}.cmds_per_s`, value: m.cmdsPerS, unit: 'cmd/s', baseline: base?.cmdsPerS ?? null });
      report({ figure: `store.cluster_r3.${c}.p50_ms`, value: s.p50, unit: 'ms', baseline: b?.p50 ?? null });
      report({ figure: `store.cluster_r3.${c}.p99_ms`, value: s.p99, unit: 'ms', baseline: b?.p99 ?? null });
    }
  } finally {
    await nats.stop();
  }
}

/** Write amplification: KiB passed to write(2) per command (WAL frames + checkpoints), beside raw. */
function writeFigure(figure: string, store: Measured, raw: Measured): void {
  if (store.writeBytesPerCmd === null) return;
  report({
    figure,
    value: store.writeBytesPerCmd / 1024,
    unit: 'KiB/cmd',
    baseline: raw.writeBytesPerCmd === null ? null : raw.writeBytesPerCmd / 1024,
  });
}

log('store write path: call_received, latency = submit → resolved (durable); raw baselines are per transaction');
await section('always');
const periodic = await section('periodic');
await clusterSection(periodic);
await contentSection();
