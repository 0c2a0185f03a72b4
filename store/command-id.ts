/**
 * Command ids the store mints when a submitter gives none: UUID version 7
 * (RFC 9562 §5.7): 48 bits of Unix ms, then a 12-bit counter (method 1 of §6.2,
 * so ids minted by this process sort in minting order even within one ms or
 * when the wall clock steps back), then 62 random bits.
 *
 * Time-ordered ids keep the log's UNIQUE(id) index appending at its right edge
 * instead of splitting random B-tree pages. Random bits come from a pooled
 * `randomFillSync` buffer: one syscall per 512 ids instead of a Web Crypto call
 * per id (the `uuidv7` package's cost, about 1.5 µs of every submit).
 */
import { randomFillSync } from 'node:crypto';

const POOL_IDS = 512;
/** 10 random bytes per id: 2 seed the counter when the ms changes, 8 fill the random tail. */
const BYTES_PER_ID = 10;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export class CommandIdSource {
  private readonly pool = Buffer.alloc(POOL_IDS * BYTES_PER_ID);
  private offset = this.pool.length;
  private lastMs = -1;
  private counter = 0;

  constructor(private readonly clock: () => number = Date.now) {}

  next(): string {
    if (this.offset >= this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const r = this.pool;
    const o = this.offset;
    this.offset += BYTES_PER_ID;
    let ms = Math.max(0, Math.floor(this.clock()));
    if (ms > this.lastMs) {
      // A fresh ms: the counter starts at a random value below 2^11, leaving at least 2,048 ids of headroom.
      this.counter = ((r[o] as number) << 3) | ((r[o + 1] as number) & 0x07);
      this.lastMs = ms;
    } else {
      // Same ms, or the clock stepped back: keep counting on the last ms; on overflow borrow the next ms.
      this.counter++;
      if (this.counter > 0xfff) {
        this.lastMs++;
        this.counter = 0;
      }
      ms = this.lastMs;
    }
    const hi = Math.floor(ms / 0x10000); // top 32 bits of the 48-bit ms
    const lo = ms % 0x10000;
    const c = this.counter;
    return (
      HEX[(hi >>> 24) & 0xff]! + HEX[(hi >>> 16) & 0xff]! + HEX[(hi >>> 8) & 0xff]! + HEX[hi & 0xff]! + '-' +
      HEX[lo >>> 8]! + HEX[lo & 0xff]! + '-' +
      HEX[0x70 | (c >>> 8)]! + HEX[c & 0xff]! + '-' +
      HEX[0x80 | ((r[o + 2] as number) & 0x3f)]! + HEX[r[o + 3] as number]! + '-' +
      HEX[r[o + 4] as number]! + HEX[r[o + 5] as number]! + HEX[r[o + 6] as number]! +
      HEX[r[o + 7] as number]! + HEX[r[o + 8] as number]! + HEX[r[o + 9] as number]!
    );
  }
}
