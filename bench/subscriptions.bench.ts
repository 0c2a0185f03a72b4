/**
 * Subscription delta latency with 1,000 subscribers, on a small (1k-row) and a
 * large `calls` table.
 *
 * Definition (the store exposes no commit timestamp, and store/ is not ours to
 * instrument): "submit → delta delivered" = time from just before
 * `store.submit()` of a single command (nothing else in flight) to the moment
 * the watching subscriber's listener runs, at fsync `never`. Baseline = "submit
 * → resolved" of the same commands on the same table with no subscriber
 * registered, so the ratio shows what subscriptions add. The two phases
 * alternate in ROUNDS rounds (subscribe all → measure → unsubscribe all), so
 * drift in the machine's load hits both alike.
 *
 * Subscribers: 1,000 × `{ id: <one watched call> }` (one per watched call) plus
 * 10 × `{ state: 'active' }`, all tenant `acme`. The measured commands
 * alternate `call_held` / `call_unheld` over the watched calls (a call can be
 * answered only once, so `call_answered` cannot be repeated on a 1k table):
 * every command moves a watched call out of or into `active`, so each one
 * yields 1 update delta for the id subscriber and 1 delete/insert delta for
 * each of the 10 state subscribers.
 *
 * The large table is populated through the store (`call_received` in waves of
 * 5,000 concurrent submits, fsync never). The issue asks for 1M rows; if the
 * projected population time exceeds POPULATE_BUDGET_S, it stops at 200k rows
 * and the figures are named `rows_200k`. BENCH_SUB_ROWS forces a size.
 *
 * Targets (issue): delta p99 ≤ 1 ms; p99(large) / p99(1k) ≤ 1.10.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { schema, type SwitchboardTables } from '../schema/index.ts';
import { resolveDurability, Store, type Delta, type Receipt } from '../store/index.ts';
import { collectGarbage, fmt, log, now, report, Samples, sleep, wanted } from './lib.ts';
import { call_answered, call_received, tenant_created } from '../schema/reducers.ts';

const OPTS = { tenant: 'acme', caller: 'bench' };
const SUBSCRIBERS = 1000;
const STATE_SUBSCRIBERS = 10;
const WAVE = 5000;
const WARMUP_CMDS = Number(process.env.BENCH_SUB_WARMUP ?? 500);
const MEASURE_CMDS = Number(process.env.BENCH_SUB_SAMPLES ?? 5000);
/** Baseline and subscribed phases alternate in this many rounds. */
const ROUNDS = 5;
const LARGE = 1_000_000;
const FALLBACK = 200_000;
const POPULATE_BUDGET_S = Number(process.env.BENCH_POPULATE_BUDGET_S ?? 150);
const FORCED_ROWS = process.env.BENCH_SUB_ROWS ? Number(process.env.BENCH_SUB_ROWS) : null;

type BenchStore = Store<SwitchboardTables>;

function label(rows: number): string {
  return rows >= 1_000_000 && rows % 1_000_000 === 0 ? `${rows / 1_000_000}m` : rows % 1000 === 0 ? `${rows / 1000}k` : String(rows);
}

function openStore(): { store: BenchStore; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-sub-'));
  const store = Store.open({
    dataDir: dir,
    schema,
    durability: resolveDurability({ profile: 'production', fsync: 'never' }),
    checkpointMs: 0,
    node: 'bench',
  });
  return { store, dir };
}

function expectOk(r: Receipt, what: string): Record<string, unknown> {
  if (!r.outcome.ok) throw new Error(`${what} rejected: ${JSON.stringify(r.outcome)}`);
  const result = r.outcome.result;
  return result !== null && typeof result === 'object' && !Array.isArray(result) ? result : {};
}

/**
 * Submits `count` commands in waves of WAVE concurrent promises; `onWave`
 * returning false stops after that wave. Returns the results in order.
 */
async function waves<T>(count: number, make: (i: number) => Promise<T>, onWave?: (done: number) => boolean): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < count; i += WAVE) {
    const batch: Promise<T>[] = [];
    for (let k = i; k < Math.min(count, i + WAVE); k++) batch.push(make(k));
    for (const r of await Promise.all(batch)) out.push(r);
    if (onWave && !onWave(Math.min(count, i + WAVE))) break;
  }
  return out;
}

interface Populated {
  rows: number;
  watched: string[];
  seconds: number;
}

/**
 * Inserts up to `target` calls and picks SUBSCRIBERS of them, spread evenly
 * over the insertion order, as the watched calls. With `fallbackAt`, stops
 * there when the projected time for `target` exceeds the budget.
 */
async function populate(store: BenchStore, target: number, fallbackAt: number | null): Promise<Populated> {
  const t0 = now();
  // Ids kept at the finest stride either final size needs; thinned out below.
  const keepEvery = Math.max(1, Math.floor(Math.min(target, fallbackAt ?? target) / SUBSCRIBERS));
  const kept: string[] = [];
  let rows = 0;
  let lastLog = t0;
  await waves(
    target,
    async (i) => {
      const r = await store.submit(
        call_received,
        { provider: 'twilio', provider_call_id: `pc-${i}`, from: '+15551230000', to: '+15559870000' },
        OPTS,
      );
      const result = expectOk(r, 'call_received');
      if (i % keepEvery === 0) {
        if (typeof result.call_id !== 'string') throw new Error('call_received returned no call_id');
        kept[i / keepEvery] = result.call_id;
      }
    },
    (done) => {
      rows = done;
      const t = now();
      if (t - lastLog > 5000) {
        log(`    ${rows.toLocaleString('en-US')} rows, ${((t - t0) / 1000).toFixed(1)} s, ${fmt((rows / (t - t0)) * 1000)} rows/s`);
        lastLog = t;
      }
      if (fallbackAt !== null && done === fallbackAt) {
        const projected = ((t - t0) / 1000) * (target / done);
        if (projected > POPULATE_BUDGET_S) {
          log(
            `    projected ${projected.toFixed(0)} s for ${label(target)} rows > budget ${POPULATE_BUDGET_S} s: stopping at ${label(done)}`,
          );
          return false;
        }
      }
      return true;
    },
  );
  const seconds = (now() - t0) / 1000;
  const step = Math.max(1, Math.floor(kept.length / SUBSCRIBERS));
  const watched: string[] = [];
  for (let j = 0; j < kept.length && watched.length < SUBSCRIBERS; j += step) {
    const id = kept[j];
    if (id !== undefined) watched.push(id);
  }
  return { rows, watched, seconds };
}

/** Submit → delta delivered, and submit → resolved, of single commands. */
interface Phase {
  delivered: Samples;
  resolved: Samples;
  /** COMMIT returned → listener ran: what the subscription engine itself adds. */
  dispatch?: Samples;
}

interface Probe {
  /** The call the command in flight changes; its `{id}` subscriber stamps `at`. */
  target: string | null;
  at: number;
  lag: number;
}

/**
 * One command at a time, alternately holding / unholding the watched calls
 * (`active` tracks their state). Samples go into `into` after `warmup` commands.
 */
async function drive(
  store: BenchStore,
  watched: string[],
  active: Map<string, boolean>,
  cursor: { k: number },
  count: number,
  warmup: number,
  probe: Probe | null,
  into: Phase,
): Promise<void> {
  let missing = 0;
  for (let j = 0; j < warmup + count; j++) {
    const callId = watched[cursor.k++ % watched.length] as string;
    const isActive = active.get(callId) ?? false;
    const reducer = isActive ? 'call_held' : 'call_unheld';
    if (probe) {
      probe.target = callId;
      probe.at = -1;
    }
    const t0 = now();
    const r = await store.submitNamed(reducer, { call_id: callId }, OPTS);
    const t1 = now();
    expectOk(r, reducer);
    active.set(callId, !isActive);
    if (probe && probe.at < 0) missing++;
    if (j < warmup) continue;
    into.resolved.push(t1 - t0);
    if (probe && probe.at >= 0) {
      into.delivered.push(probe.at - t0);
      into.dispatch?.push(probe.lag);
    }
  }
  if (missing > 0) throw new Error(`${missing} commands produced no delta for their watching subscriber`);
}

/**
 * Flushes the OS's dirty pages (`sync`) so a big population's writeback does
 * not land in the measurement. (Not an fsync on our own fd of the database:
 * closing any fd of a file drops the process's POSIX locks on it, SQLite's
 * exclusive lock included.)
 */
function flushOs(): void {
  try {
    execFileSync('sync', { stdio: 'ignore' });
  } catch {
    // best effort
  }
}

interface SizeResult {
  rows: number;
  populateSeconds: number;
  baseline: ReturnType<Samples['summary']>;
  dispatch: ReturnType<Samples['summary']>;
  delta: ReturnType<Samples['summary']>;
  resolvedWithSubs: ReturnType<Samples['summary']>;
  subscribeUs: number;
}

async function measureSize(target: number, fallbackAt: number | null): Promise<SizeResult> {
  const { store, dir } = openStore();
  try {
    expectOk(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, OPTS), 'tenant_created');
    log(`  populating up to ${label(target)} calls (fsync never, waves of ${WAVE})`);
    const pop = await populate(store, target, fallbackAt);
    log(`    ${label(pop.rows)} rows in ${pop.seconds.toFixed(1)} s (${fmt(pop.rows / pop.seconds)} rows/s)`);

    // Bring the watched calls to `active` (unmeasured).
    const watched = pop.watched;
    await waves(watched.length, (i) => store.submit(call_answered, { call_id: watched[i] as string }, OPTS));
    const acts = await waves(watched.length, (i) => store.submitNamed('call_activated', { call_id: watched[i] as string }, OPTS));
    acts.forEach((r) => expectOk(r, 'call_activated'));
    const active = new Map(watched.map((id) => [id, true]));
    flushOs();
    await sleep(200);

    // Rounds of: no subscribers → subscribe 1,010 → subscribed → unsubscribe, so drift hits both phases alike.
    const base: Phase = { delivered: new Samples(), resolved: new Samples() };
    const subs: Phase = { delivered: new Samples(), resolved: new Samples(), dispatch: new Samples() };
    const cursor = { k: 0 };
    const perRound = Math.ceil(MEASURE_CMDS / ROUNDS);
    const warmup = Math.ceil(WARMUP_CMDS / ROUNDS);
    const probe: Probe = { target: null, at: -1, lag: 0 };
    let stateDeltas = 0;
    let subscribeMs = 0;
    const roundP99: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const roundBase: Phase = { delivered: new Samples(), resolved: new Samples() };
      const roundSubs: Phase = { delivered: new Samples(), resolved: new Samples(), dispatch: subs.dispatch };
      collectGarbage();
      await drive(store, watched, active, cursor, perRound, warmup, null, roundBase);

      const tSub = now();
      const unsubscribe: Array<() => void> = [];
      for (const callId of watched) {
        const sub = store.subscribe('calls', { id: callId }, 'acme', (d: Delta) => {
          if (probe.target === callId && d.new?.id === callId) {
            probe.at = now();
            probe.lag = probe.at - d.committedAt;
          }
        });
        unsubscribe.push(sub.unsubscribe);
      }
      for (let i = 0; i < STATE_SUBSCRIBERS; i++) {
        const sub = store.subscribe('calls', { state: 'active' }, 'acme', () => {
          stateDeltas++;
        });
        unsubscribe.push(sub.unsubscribe);
      }
      subscribeMs += now() - tSub;
      if (store.subscriberCount !== watched.length + STATE_SUBSCRIBERS) throw new Error('subscriber count mismatch');

      collectGarbage();
      await drive(store, watched, active, cursor, perRound, warmup, probe, roundSubs);
      for (const u of unsubscribe) u();
      probe.target = null;
      base.resolved.pushAll(roundBase.resolved);
      subs.resolved.pushAll(roundSubs.resolved);
      subs.delivered.pushAll(roundSubs.delivered);
      roundP99.push(
        `${fmt(roundBase.resolved.summary().p99)}/${fmt(roundSubs.delivered.summary().p99)}`,
      );
    }
    const expectedStateDeltas = STATE_SUBSCRIBERS * ROUNDS * (perRound + warmup);
    if (stateDeltas !== expectedStateDeltas) {
      throw new Error(`state subscribers got ${stateDeltas} deltas, expected ${expectedStateDeltas}`);
    }
    const result: SizeResult = {
      rows: pop.rows,
      populateSeconds: pop.seconds,
      baseline: base.resolved.summary(),
      delta: subs.delivered.summary(),
      dispatch: subs.dispatch!.summary(),
      resolvedWithSubs: subs.resolved.summary(),
      subscribeUs: (subscribeMs * 1000) / (ROUNDS * (watched.length + STATE_SUBSCRIBERS)),
    };
    const f = (x: SizeResult['delta']): string =>
      `p50 ${fmt(x.p50)} ms  p99 ${fmt(x.p99)} ms  max ${fmt(x.max)} ms  (n=${x.n})`;
    log(`    no subscribers,    submit → resolved: ${f(result.baseline)}`);
    log(`    1,010 subscribers, submit → delta:    ${f(result.delta)}`);
    log(`    1,010 subscribers, submit → resolved: ${f(result.resolvedWithSubs)}`);
    log(`    per-round p99 ms (no subs resolved / subs delta): ${roundP99.join(', ')}`);
    log(`    subscribe(): ${fmt(result.subscribeUs)} µs per subscriber (snapshot query included)`);
    return result;
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function reportSize(r: SizeResult): void {
  const p = `subscriptions.rows_${label(r.rows)}`;
  report({ figure: `${p}.delta_p50_ms`, value: r.delta.p50, unit: 'ms', baseline: r.baseline.p50 });
  report({
    figure: `${p}.delta_p99_ms`,
    value: r.delta.p99,
    unit: 'ms',
    baseline: r.baseline.p99,
    target: { op: '<=', value: 1, unit: 'ms' },
  });
  report({ figure: `${p}.resolved_p99_ms`, value: r.resolvedWithSubs.p99, unit: 'ms', baseline: r.baseline.p99 });
  report({
    figure: `${p}.commit_to_delta_p99_ms`,
    value: r.dispatch.p99,
    unit: 'ms',
    target: { op: '<=', value: 1, unit: 'ms' },
    note: 'COMMIT returned → the watching listener ran (the subscription engine alone, among 1,010 subscribers)',
  });
  report({ figure: `${p}.subscribe_us`, value: r.subscribeUs, unit: 'µs/sub', baseline: null });
}

const FIGURES = [
  'subscriptions.rows_1k.delta_p50_ms',
  'subscriptions.rows_1k.delta_p99_ms',
  'subscriptions.rows_1k.resolved_p99_ms',
  'subscriptions.rows_1k.subscribe_us',
  ...['1m', '200k'].flatMap((s) => [
    `subscriptions.rows_${s}.delta_p50_ms`,
    `subscriptions.rows_${s}.delta_p99_ms`,
    `subscriptions.rows_${s}.resolved_p99_ms`,
    `subscriptions.rows_${s}.subscribe_us`,
    `subscriptions.populate_${s}.rows_per_s`,
  ]),
  'subscriptions.delta_p99_size_ratio',
  'subscriptions.commit_to_delta_p99_size_ratio',
  'subscriptions.delta_p99_size_ratio_200k',
];

if (wanted(FIGURES)) {
  log(
    `subscriptions: ${SUBSCRIBERS} × {id} + ${STATE_SUBSCRIBERS} × {state:'active'} subscribers; ` +
      `latency = submit → delta delivered, single commands, fsync never; baseline = submit → resolved without subscribers`,
  );
  log(`table 1k`);
  const small = await measureSize(1000, null);
  reportSize(small);
  collectGarbage();

  const largeTarget = FORCED_ROWS ?? LARGE;
  log(`table ${label(largeTarget)}${FORCED_ROWS ? ' (BENCH_SUB_ROWS)' : ` (falls back to ${label(FALLBACK)} if population would exceed ${POPULATE_BUDGET_S} s)`}`);
  const large = await measureSize(largeTarget, FORCED_ROWS ? null : FALLBACK);
  report({
    figure: `subscriptions.populate_${label(large.rows)}.rows_per_s`,
    value: large.rows / large.populateSeconds,
    unit: 'rows/s',
    note: `${large.rows} rows in ${large.populateSeconds.toFixed(1)} s via call_received`,
  });
  reportSize(large);
  report({
    figure: large.rows === LARGE ? 'subscriptions.commit_to_delta_p99_size_ratio' : `subscriptions.commit_to_delta_p99_size_ratio_${label(large.rows)}`,
    value: large.dispatch.p99 / small.dispatch.p99,
    unit: 'x',
    target: { op: '<=', value: 1.1 },
    note: 'delivery after commit does not depend on table size (index lookups, no re-query)',
  });
  report({
    figure: large.rows === LARGE ? 'subscriptions.delta_p99_size_ratio' : `subscriptions.delta_p99_size_ratio_${label(large.rows)}`,
    value: large.delta.p99 / small.delta.p99,
    unit: 'x',
    target: { op: '<=', value: 1.1 },
  });
}
