/**
 * The attestation part of `switchboard verify`'s text output (cluster mode; store/attestations.ts): how many
 * attestations by which nodes were checked against this node's chain, the last positions with the nodes that
 * attested each, and any node that presented another key than its pinned one. Nothing for an embedded node.
 */
import type { VerifyReport } from '../store/index.ts';

/** Positions listed (the latest ones); `--json` has them all. */
const SHOWN = 10;

export function attestationLines(a: VerifyReport['attestations']): string[] {
  if (a.count === 0 && a.keyChanges.length === 0 && a.beyondHead === 0) return [];
  const nodes = Object.keys(a.nodes).sort();
  const everyNode = a.positions.filter((p) => p.nodes.length === nodes.length).length;
  const lines = [
    `attestations: ${a.count} by ${nodes.length} node${nodes.length === 1 ? '' : 's'} (${nodes.map((n) => `${n} ${a.nodes[n]}`).join(', ')}) over ${a.positions.length} positions; ${everyNode} attested by every one of them` +
      (a.beyondHead > 0 ? `; ${a.beyondHead} beyond this node's head (not checked)` : ''),
  ];
  const shown = a.positions.slice(-SHOWN);
  if (a.positions.length > shown.length) lines.push(`  … ${a.positions.length - shown.length} earlier positions (--json lists them)`);
  for (const p of shown) lines.push(`  seq ${p.seq}: attested by ${p.nodes.join(', ')}`);
  const changes = new Map<string, { node: string; presented: string; pinned: string; first: number; n: number }>();
  for (const k of a.keyChanges) {
    const c = changes.get(`${k.node}\n${k.presented}`) ?? { node: k.node, presented: k.presented, pinned: k.pinned, first: k.seq, n: 0 };
    c.n++;
    c.first = Math.min(c.first, k.seq);
    changes.set(`${k.node}\n${k.presented}`, c);
  }
  for (const c of changes.values()) {
    lines.push(`  key change: ${c.node} signed ${c.n} attestation${c.n === 1 ? '' : 's'} (from seq ${c.first}) with key ${c.presented}, not its pinned key ${c.pinned}: not counted`);
  }
  return lines;
}
