/**
 * When this node signs checkpoints of its log head (store/checkpoint.ts holds the key, the signature and the
 * `_checkpoints` table): every `every` events inside the batch that reaches them (`beforeCommit`, so the checkpoint
 * commits with its events), every `ms` when the head moved (a timer), and at close (`signNow`).
 *
 *   engine.beforeCommit(seq, hash) ─► seq − last ≥ every ? sign
 *   timer (ms) / close ──────────────► head moved since last ? sign
 *   engine fault (batch rolled back) ─► resync: the checkpoint written inside it is gone with it
 */
import { signCheckpoint, type CheckpointTable, type NodeKey } from './checkpoint.ts';

export interface SignerOptions {
  checkpoints: CheckpointTable;
  key: NodeKey;
  clock: () => number;
  /** Events between checkpoints. */
  every: number;
  /** Timer period, ms (0 = no timer). */
  ms: number;
  /** The head to sign on the timer. */
  head: () => { seq: number; hash: string };
  onError: (err: unknown) => void;
}

export class CheckpointSigner {
  private last: number;
  private readonly timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: SignerOptions) {
    this.last = opts.checkpoints.lastSeq(opts.key.node);
    if (opts.ms > 0) {
      this.timer = setInterval(() => {
        try {
          this.signNow();
        } catch (err) {
          opts.onError(err);
        }
      }, opts.ms);
      this.timer.unref();
    }
  }

  /** Inside the committing batch: signs when `every` events passed since the last checkpoint. */
  beforeCommit(seq: number, hash: string): void {
    if (seq - this.last >= this.opts.every) this.sign(seq, hash);
  }

  /** Signs the current head unless it is signed already. */
  signNow(): void {
    const { seq, hash } = this.opts.head();
    if (seq > this.last) this.sign(seq, hash);
  }

  /** After a rolled-back batch: the last checkpoint is what the table holds. */
  resync(): void {
    this.last = this.opts.checkpoints.lastSeq(this.opts.key.node);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private sign(seq: number, hash: string): void {
    this.opts.checkpoints.write(signCheckpoint(this.opts.key, seq, hash, this.opts.clock()));
    this.last = seq;
  }
}
