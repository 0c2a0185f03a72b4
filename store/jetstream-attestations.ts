/**
 * Attestations through NATS (what they are and how `verify` checks them: store/attestations.ts): a JetStream stream
 * `<log stream>_ATTESTATIONS` (file storage, the log's replicas) beside the log. Every node publishes each checkpoint
 * it signs there, and stores every node's (its own included) in its `_attestations` table.
 *
 *   checkpoint written (CheckpointTable.onWrite) ─┐
 *   every TICK_MS ────────────────────────────────┴─► tick: publish ─► read
 *     publish: this node's checkpoints after the last one it published (the last message on its subject, read once
 *              at start, so a checkpoint signed while NATS was away, or at close, goes out on a later tick or start)
 *              as {v, node, seq, hash, publicKey, signature, signedAt} on `<S>.node.<node>`, msgID node:seq:sig
 *     read:    when the stream holds messages past `_meta.attestations_stream_seq`, fetch them in batches (an
 *              ordered consumer from that position) and store them with the new position in one transaction
 *
 * One tick at a time (the first creates the stream when missing); a failed tick (NATS away) is reported once and tried again on the next. A node that starts late
 * reads the stream from its first message, so it receives every earlier attestation. Reading by polling keeps this
 * simple and stateless across a NATS server's death: attestations are one message per checkpoint per node.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Attestation, AttestationTable } from './attestations.ts';
import type { CheckpointTable, NodeKey } from './checkpoint.ts';
import { ensureSideStream } from './jetstream-streams.ts';

/** How often a node publishes its new checkpoints and reads the others'. */
const TICK_MS = 1000;
/** Messages read per fetch. */
const BATCH = 500;

export const attestationStream = (logStream: string): string => `${logStream}_ATTESTATIONS`;

/** A node name as one subject token: itself when it is a plain token, else `b64.<base64url>` (two tokens). */
export function nodeSubject(logStream: string, node: string): string {
  const token = /^[A-Za-z0-9_-]+$/.test(node) ? node : `b64.${Buffer.from(node).toString('base64url')}`;
  return `${attestationStream(logStream)}.node.${token}`;
}

/** A stream message as an attestation, or null when it is not one (a wrong shape is skipped, not stored). */
export function decodeAttestation(data: Uint8Array): Attestation | null {
  try {
    const m = JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown>;
    const { node, seq, hash, publicKey, signature, signedAt } = m;
    if (m.v !== 1 || typeof node !== 'string' || typeof hash !== 'string' || typeof publicKey !== 'string' || typeof signature !== 'string') return null;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return null;
    return { node, seq, hash, publicKey, signature, signedAt: typeof signedAt === 'number' ? signedAt : 0 };
  } catch {
    return null;
  }
}

export function encodeAttestation(a: Attestation): string {
  return JSON.stringify({ v: 1, node: a.node, seq: a.seq, hash: a.hash, publicKey: a.publicKey, signature: a.signature, signedAt: a.signedAt });
}

export interface AttestationSyncOptions {
  nc: NatsConnection;
  logStream: string;
  replicas: number;
  key: NodeKey;
  checkpoints: CheckpointTable;
  table: AttestationTable;
  onError: (err: unknown) => void;
}

export class AttestationSync {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** The last seq of this node's checkpoints published (null until read from the stream). */
  private published: number | null = null;
  private failing = false;
  private ensured = false;
  private readonly name: string;
  private readonly subject: string;
  private readonly js: JetStreamClient;

  constructor(private readonly opts: AttestationSyncOptions) {
    this.name = attestationStream(opts.logStream);
    this.subject = nodeSubject(opts.logStream, opts.key.node);
    this.js = jetstream(opts.nc, { timeout: 10_000 });
  }

  /**
   * Publishes and reads on every checkpoint and every TICK_MS, the first tick at once (it creates the stream when
   * missing). Not awaited by the store's open: attestations never stop a node from serving.
   */
  start(): void {
    this.opts.checkpoints.onWrite = () => setImmediate(() => this.kick());
    this.timer = setInterval(() => this.kick(), TICK_MS);
    this.timer.unref();
    this.kick();
  }

  /** Runs a tick now (or right after the one running). Resolves when that tick is done. */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.tick();
          this.failing = false;
        } catch (err) {
          if (!this.stopped && !this.failing) this.opts.onError(new Error(`cluster attestations: ${(err as Error).message} (retrying)`));
          this.failing = true;
        }
      } while (this.again && !this.stopped);
    })().finally(() => (this.running = null));
    return this.running;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.opts.checkpoints.onWrite = null;
  }

  private jsm: JetStreamManager | null = null;

  private async tick(): Promise<void> {
    const jsm = (this.jsm ??= await jetstreamManager(this.opts.nc, { timeout: 5000 }));
    if (!this.ensured) {
      await ensureSideStream(jsm, this.name, this.opts.replicas);
      this.ensured = true;
    }
    await this.publish(jsm);
    await this.read(jsm);
  }

  private async publish(jsm: JetStreamManager): Promise<void> {
    if (this.published === null) {
      const last = await jsm.streams.getMessage(this.name, { last_by_subj: this.subject }).catch((err: Error) => {
        if (/not found|no message/i.test(err.message)) return null;
        throw err;
      });
      this.published = (last ? decodeAttestation(last.data)?.seq : undefined) ?? 0;
    }
    if (this.stopped) return;
    const js = this.js;
    const { node, publicKeyPem } = this.opts.key;
    for (const cp of this.opts.table.ownCheckpointsAfter(node, this.published)) {
      const body = encodeAttestation({ node, seq: cp.seq, hash: cp.hash, publicKey: publicKeyPem, signature: cp.signature, signedAt: cp.signedAt });
      await js.publish(this.subject, body, { msgID: `${node}:${cp.seq}:${cp.signature.slice(0, 16)}` });
      this.published = cp.seq;
      if (this.stopped) return;
    }
  }

  private async read(jsm: JetStreamManager): Promise<void> {
    const js = this.js;
    for (;;) {
      const info = await jsm.streams.info(this.name);
      if (this.stopped) return;
      const from = this.opts.table.position;
      if (info.state.last_seq <= from) return;
      const start = Math.max(from + 1, info.state.first_seq);
      const consumer = await js.consumers.get(this.name, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start });
      const want = Math.min(BATCH, info.state.last_seq - start + 1);
      const messages = await consumer.fetch({ max_messages: want, expires: 5000 });
      const received: Array<{ streamSeq: number; attestation: Attestation | null }> = [];
      let upTo = from;
      for await (const m of messages) {
        if (m.seq <= upTo) continue;
        received.push({ streamSeq: m.seq, attestation: decodeAttestation(m.data) });
        upTo = m.seq;
        if (received.length >= want) break;
      }
      if (this.stopped || upTo === from) return;
      this.opts.table.store(received, upTo);
    }
  }
}
