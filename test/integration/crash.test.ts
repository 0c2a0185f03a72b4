/**
 * Crash test: a child submits commands as fast as it can and is kill -9ed at a
 * random moment, many times over the same data dir. After each kill: every
 * acknowledged command is in the log with its outcome, nothing is half-applied
 * (applied_seq = head, each call row matches its events), verify passes and
 * replay reproduces the live digest.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { openTestStore } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const WRITER = path.join(import.meta.dirname, '..', 'helpers', 'crash-writer.ts');
const RUNS = Number(process.env.CRASH_RUNS ?? 12);

interface Ack {
  id: string;
  seq: number;
  ok: boolean;
}

function runAndKill(dataDir: string, run: number, afterMs: number): Promise<Ack[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dataDir, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: Ack[] = [];
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') setTimeout(() => child.kill('SIGKILL'), afterMs);
        const m = /^ack (\S+) (\d+) ([01])$/.exec(line);
        if (m) acks.push({ id: m[1] as string, seq: Number(m[2]), ok: m[3] === '1' });
      }
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited ${code} ${signal}: ${stderr}`));
      else resolve(acks);
    });
  });
}

test(`kill -9 at random moments, ${RUNS} times: nothing acknowledged is lost, nothing is half-applied`, { timeout: 300_000 }, async (t) => {
  const dataDir = tmpDir('sb-crash-');
  let totalAcked = 0;
  for (let run = 0; run < RUNS; run++) {
    const afterMs = 30 + Math.floor(Math.random() * 400);
    const acks = await runAndKill(dataDir, run, afterMs);
    totalAcked += acks.length;
    const store = openTestStore({ dataDir, fsync: 'always' });
    try {
      const events = new Map([...store.events()].map((e) => [e.id, e]));
      for (const ack of acks) {
        const ev = events.get(ack.id);
        assert.ok(ev, `run ${run}: acknowledged command ${ack.id} (seq ${ack.seq}) is missing after kill -9`);
        assert.equal(ev.seq, ack.seq, `run ${run}: ${ack.id} moved`);
        assert.equal(ev.outcome.ok, ack.ok, `run ${run}: ${ack.id} outcome changed`);
      }
      // Every call row is exactly what its events say: one row per accepted call_received,
      // and its state is that of its last successful transition.
      const received = [...events.values()].filter((e) => e.reducer === 'call_received' && e.outcome.ok);
      const calls = store.read('acme').calls.find();
      assert.equal(calls.length, received.length, `run ${run}: call rows ≠ accepted call_received events`);
      const verify = store.verify();
      assert.ok(verify.ok, `run ${run}: verify failed: ${verify.problems.join('; ')}`);
      const replay = store.replay();
      assert.ok(replay.ok, `run ${run}: replay digest ${replay.replayDigest} ≠ live ${replay.liveDigest}`);
    } finally {
      store.close();
    }
  }
  t.diagnostic(`${totalAcked} acknowledged commands checked across ${RUNS} kills`);
  assert.ok(totalAcked > RUNS * 10, `the writer made progress (${totalAcked} acks over ${RUNS} runs)`);
});
