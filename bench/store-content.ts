/**
 * Store write path with content sealing (issue 17): `transcript_appended` commands on one consented call, 64
 * submitters, fsync periodic — the same store with the gateway's sealer installed (recording/content-seal.ts:
 * AES-256-GCM of the text under the call's key, cached after the first) beside the plain store, in the same run,
 * alternated plain/sealed/plain/sealed so drift in the machine's load hits both alike (the better of each pair).
 * Target (issue): sealed ≥ 0.9× plain commands/s.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../recording/blob-fs.ts';
import { ContentKeyring } from '../recording/content-keys.ts';
import { ContentSealer } from '../recording/content-seal.ts';
import { loadOrCreateMasterKey } from '../recording/master-key.ts';
import { schema } from '../schema/index.ts';
import { call_answered, call_received, consent_decided, consent_started, tenant_created, transcript_appended } from '../schema/reducers.ts';
import { resolveDurability, Store } from '../store/index.ts';
import { collectGarbage, fmt, log, now, report, Samples, wanted } from './lib.ts';

const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 500);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 3000);
const OPTS = { tenant: 'acme', caller: 'bench' };
const TEXT = 'I would like to check the balance of my savings account and move some money to checking please';
const FIGURES = ['store.content_sealed.c64.cmds_per_s', 'store.content_sealed.c64.p99_ms', 'store.content_sealed.c64.ratio_to_plain'];

interface Run {
  cmdsPerS: number;
  lat: Samples;
}

function ok<T>(r: { outcome: { ok: true; result: T } | { ok: false; error: { code: string } } }): T {
  if (!r.outcome.ok) throw new Error(`setup refused: ${r.outcome.error.code}`);
  return r.outcome.result;
}

async function run(sealed: boolean): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-bench-content-'));
  const store = Store.open({ dataDir: dir, schema, durability: resolveDurability({ profile: 'production', fsync: 'periodic' }), checkpointMs: 0, node: 'bench' });
  try {
    if (sealed) new ContentSealer(store, new ContentKeyring(new FsBlobStore(dir), loadOrCreateMasterKey(dir))).install();
    ok(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, OPTS));
    const policy = store.read('acme').consent_policies.findOne({ name: 'default' });
    if (!policy) throw new Error('no default policy');
    const { call_id } = ok(await store.submit(call_received, { provider: 'twilio', provider_call_id: 'bench-1', from: '+15551230000', to: '+15559870000' }, OPTS));
    ok(await store.submit(call_answered, { call_id }, OPTS));
    const { consent_id } = ok(await store.submit(consent_started, { call_id, policy_id: policy.id }, OPTS));
    ok(await store.submit(consent_decided, { consent_id, outcome: 'granted', method: 'dtmf', evidence: { digit: '1' } }, OPTS));
    const lat = new Samples();
    let completed = 0;
    let n = 0;
    const measureStart = now() + WARMUP_MS;
    const end = measureStart + MEASURE_MS;
    const loop = async (): Promise<void> => {
      for (;;) {
        const s = now();
        if (s >= end) return;
        const i = ++n;
        const r = await store.submit(transcript_appended, { call_id, channel: 'caller', start_ms: i * 10, end_ms: i * 10 + 5, text: `${TEXT} ${i}`, provider: 'bench' }, OPTS);
        const e = now();
        if (!r.outcome.ok) throw new Error(`transcript_appended refused: ${r.outcome.error.code}`);
        if (s >= measureStart) lat.push(e - s);
        if (e >= measureStart && e < end) completed++;
      }
    };
    await Promise.all(Array.from({ length: 64 }, loop));
    return { cmdsPerS: completed / (MEASURE_MS / 1000), lat };
  } finally {
    store.close();
    await store.whenClosed();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function describe(label: string, m: Run): void {
  const s = m.lat.summary();
  log(`  ${label.padEnd(34)} ${fmt(m.cmdsPerS).padStart(9)} cmd/s   p50 ${fmt(s.p50)} ms   p99 ${fmt(s.p99)} ms   (n=${s.n})`);
}

export async function contentSection(): Promise<void> {
  if (!wanted(FIGURES)) return;
  log(`content sealing: transcript_appended, 64 submitters, fsync periodic (warm-up ${WARMUP_MS} ms, measure ${MEASURE_MS} ms each)`);
  const runs: { plain: Run[]; sealed: Run[] } = { plain: [], sealed: [] };
  for (let i = 0; i < 2; i++) {
    for (const kind of ['plain', 'sealed'] as const) {
      collectGarbage();
      const m = await run(kind === 'sealed');
      describe(`${kind}, run ${i + 1}`, m);
      runs[kind].push(m);
    }
  }
  const best = (rs: Run[]): Run => rs.reduce((a, b) => (b.cmdsPerS > a.cmdsPerS ? b : a));
  const plain = best(runs.plain);
  const sealed = best(runs.sealed);
  report({ figure: FIGURES[0]!, value: sealed.cmdsPerS, unit: 'cmd/s', baseline: plain.cmdsPerS });
  report({ figure: FIGURES[1]!, value: sealed.lat.summary().p99, unit: 'ms', baseline: plain.lat.summary().p99 });
  report({ figure: FIGURES[2]!, value: sealed.cmdsPerS / plain.cmdsPerS, unit: 'x', target: { op: '>=', value: 0.9 } });
}
