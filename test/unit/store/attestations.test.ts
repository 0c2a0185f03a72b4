/**
 * Attestations (store/attestations.ts) without NATS: what a node stores from the attestations stream, how keys are
 * pinned on first use, and what `verify` makes of them — and the embedded store's verify, which has none.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { AttestationTable, type Attestation } from '../../../store/attestations.ts';
import { loadOrCreateNodeKey, signCheckpoint, type NodeKey } from '../../../store/checkpoint.ts';
import { resolveDurability, Store } from '../../../store/index.ts';
import { databaseOf } from '../../../store/testing.ts';
import { attestationLines } from '../../../cli/verify-output.ts';
import { tallySchema } from '../../helpers/tally-schema.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const A = { tenant: 'a', caller: 'alice' };

async function store(n: number): Promise<Store<typeof tallySchema.tables>> {
  const s = Store.open({ dataDir: tmpDir(), schema: tallySchema, durability: resolveDurability({ fsync: 'never' }), checkpointMs: 0, checkpointEvery: 10, node: 'n1' });
  for (let i = 0; i < n; i++) await s.submitNamed('put', { id: `k${i}`, n: i }, A);
  return s;
}

const key = (node: string): NodeKey => loadOrCreateNodeKey(path.join(tmpDir(), 'keys'), node);
const hashAt = (s: Store<typeof tallySchema.tables>, seq: number): string => [...s.events(seq, seq)][0]!.hash;

function attest(k: NodeKey, seq: number, hash: string): Attestation {
  const cp = signCheckpoint(k, seq, hash, 1);
  return { node: k.node, seq, hash, publicKey: k.publicKeyPem, signature: cp.signature, signedAt: 1 };
}

test('embedded: verify reports no attestations and prints nothing more', async (t) => {
  const s = await store(12);
  t.after(() => s.close());
  const r = s.verify();
  assert.equal(r.ok, true);
  assert.deepEqual(r.attestations, { count: 0, nodes: {}, positions: [], beyondHead: 0, keyChanges: [] });
  assert.deepEqual(attestationLines(r.attestations), []);
});

test('stored attestations: counted per position, the first valid key pins a name, another key is a key change, bad ones fail naming node and seq', async (t) => {
  const s = await store(20);
  t.after(() => s.close());
  const table = new AttestationTable(databaseOf(s));
  const m1 = key('m1');
  const m2 = key('m2');
  const other = key('m1');
  // a bad signature first: it must not pin m1's key
  const junk = { ...attest(other, 5, hashAt(s, 5)), signature: attest(other, 6, hashAt(s, 6)).signature };
  table.store([{ streamSeq: 1, attestation: junk }, { streamSeq: 2, attestation: null }], 2);
  table.store(
    [
      { streamSeq: 3, attestation: attest(m1, 10, hashAt(s, 10)) },
      { streamSeq: 4, attestation: attest(m2, 10, hashAt(s, 10)) },
      { streamSeq: 5, attestation: attest(m1, 20, hashAt(s, 20)) },
      { streamSeq: 6, attestation: attest(other, 15, hashAt(s, 15)) },
      { streamSeq: 7, attestation: attest(m2, 25, 'a'.repeat(64)) },
    ],
    7,
  );
  assert.equal(table.position, 7);
  // received again (a re-read after a restart): stored once
  table.store([{ streamSeq: 3, attestation: attest(m1, 10, hashAt(s, 10)) }], 7);

  const r = s.verify();
  assert.equal(r.attestations.count, 3);
  assert.deepEqual(r.attestations.nodes, { m1: 2, m2: 1 });
  assert.deepEqual(r.attestations.positions, [
    { seq: 10, nodes: ['m1', 'm2'] },
    { seq: 20, nodes: ['m1'] },
  ]);
  assert.equal(r.attestations.beyondHead, 1, 'seq 25 is past this node\'s head (20)');
  assert.equal(r.attestations.keyChanges.length, 1);
  assert.equal(r.attestations.keyChanges[0]!.node, 'm1');
  assert.equal(r.attestations.keyChanges[0]!.seq, 15);
  // the tampered one fails, naming its node and seq
  assert.equal(r.ok, false);
  assert.equal(r.firstBadSeq, 5);
  assert.ok(r.problems.some((p) => p.includes('attestation by m1 of seq 5: its signature is invalid')), r.problems.join('; '));

  const lines = attestationLines(r.attestations);
  assert.equal(lines[0], "attestations: 3 by 2 nodes (m1 2, m2 1) over 2 positions; 1 attested by every one of them; 1 beyond this node's head (not checked)");
  assert.ok(lines.includes('  seq 10: attested by m1, m2'));
  assert.ok(lines.some((l) => l.startsWith('  key change: m1 signed 1 attestation (from seq 15) with key sha256:')));
});

test('an attestation of another history (a valid signature over another hash at a seq this node has) fails verify', async (t) => {
  const s = await store(8);
  t.after(() => s.close());
  const table = new AttestationTable(databaseOf(s));
  table.store([{ streamSeq: 1, attestation: attest(key('m3'), 4, 'b'.repeat(64)) }], 1);
  const r = s.verify();
  assert.equal(r.ok, false);
  assert.equal(r.firstBadSeq, 4);
  assert.ok(r.problems.some((p) => p === `seq 4: node m3 attested seq 4 with hash ${'b'.repeat(64)}, this node's hash there is ${hashAt(s, 4)}: the two nodes signed different histories`), r.problems.join('; '));
});
