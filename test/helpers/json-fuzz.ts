/**
 * Seeded mutations of valid wire messages for fuzz tests: structural changes to
 * a JSON value (a field replaced by a value of another type, removed, added —
 * names of Object.prototype members included —, nested, repeated) and byte
 * changes to its text (cut, flipped, spliced, stretched to tens of KiB, broken
 * UTF-8), plus random binary frames. The same seed gives the same run.
 */

/** mulberry32: small, fast, seedable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The run's seed: SWITCHBOARD_FUZZ_SEED if set, else a fresh one (printed by the test so a failure can be replayed). */
export function fuzzSeed(): number {
  const env = process.env.SWITCHBOARD_FUZZ_SEED;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n)) throw new Error(`SWITCHBOARD_FUZZ_SEED must be an integer, got ${env}`);
    return n >>> 0;
  }
  return Math.floor(Math.random() * 2 ** 32);
}

export const PROTO_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__', 'propertyIsEnumerable', 'toLocaleString'];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export class Mutator {
  constructor(readonly rnd: () => number) {}

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }

  /** A string a parser may choke on. */
  string(): string {
    switch (this.int(10)) {
      case 0: return '';
      case 1: return this.pick(PROTO_NAMES);
      case 2: return 'x'.repeat(1 + this.int(70_000));
      case 3: return ' '.repeat(this.int(65_000)) + 'x';
      case 4: return '\u0000\ud800\uffff\u202e' + '😀'.repeat(this.int(50));
      case 5: return String(this.int(1e13)).padStart(this.int(20), '0');
      case 6: return 'CA' + '0123456789abcdef'.repeat(2).slice(0, this.int(40));
      case 7: return Buffer.from(Array.from({ length: this.int(400) }, () => this.int(256))).toString('base64');
      case 8: return '%'.repeat(this.int(20)) + '=&;,"\\<>';
      default: return Array.from({ length: this.int(40) }, () => String.fromCharCode(this.int(0x3000))).join('');
    }
  }

  /** A JSON value of any type. */
  value(depth = 0): Json {
    switch (this.int(depth > 3 ? 6 : 9)) {
      case 0: return null;
      case 1: return this.rnd() < 0.5;
      case 2: return this.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 8000, 16000, 160]);
      case 3:
      case 4:
      case 5: return depth > 0 ? this.string().slice(0, 256) : this.string();
      case 6: return Array.from({ length: this.int(depth > 0 ? 4 : 2000) }, () => this.value(depth + 1));
      case 7: {
        const o: Record<string, Json> = {};
        for (let i = this.int(6); i > 0; i--) Object.defineProperty(o, this.rnd() < 0.4 ? this.pick(PROTO_NAMES) : this.string().slice(0, 40), { value: this.value(depth + 1), enumerable: true, writable: true, configurable: true });
        return o;
      }
      default: return this.pick(PROTO_NAMES);
    }
  }

  /** A structural mutation of `valid` (deep-copied first). */
  mutateJson(valid: Json, events: readonly string[] = []): Json {
    const copy = JSON.parse(JSON.stringify(valid)) as Json;
    const rounds = 1 + this.int(3);
    let out = copy;
    for (let r = 0; r < rounds; r++) out = this.mutateOnce(out, events);
    return out;
  }

  private mutateOnce(root: Json, events: readonly string[]): Json {
    const containers: Array<Record<string, Json> | Json[]> = [];
    const walk = (v: Json): void => {
      if (v !== null && typeof v === 'object') {
        containers.push(v);
        for (const c of Array.isArray(v) ? v : Object.values(v)) walk(c);
      }
    };
    walk(root);
    if (containers.length === 0 || this.rnd() < 0.05) return this.value();
    const box = this.pick(containers);
    const keys = Array.isArray(box) ? box.map((_, i) => String(i)) : Object.keys(box);
    const set = (k: string, v: Json): void => {
      if (Array.isArray(box)) box[Number(k)] = v;
      else Object.defineProperty(box, k, { value: v, enumerable: true, writable: true, configurable: true });
    };
    const op = this.int(7);
    if (op === 0 && keys.length > 0 && !Array.isArray(box)) delete box[this.pick(keys)];
    else if (op === 1) set(Array.isArray(box) ? String(box.length) : this.rnd() < 0.5 ? this.pick(PROTO_NAMES) : this.string().slice(0, 30), this.value(1));
    else if (op === 2 && events.length > 0 && !Array.isArray(box) && 'event' in box) set('event', this.rnd() < 0.5 ? this.pick(events) : this.pick(PROTO_NAMES));
    else if (keys.length > 0) set(this.pick(keys), this.value(1));
    return root;
  }

  /** Byte-level damage to a message's text. */
  mutateText(text: string): string | Buffer {
    switch (this.int(8)) {
      case 0: return text.slice(0, this.int(text.length + 1));
      case 1: {
        const i = this.int(text.length + 1);
        return text.slice(0, i) + this.string().slice(0, 200) + text.slice(i);
      }
      case 2: {
        const chars = [...text];
        for (let n = 1 + this.int(4); n > 0 && chars.length > 0; n--) chars[this.int(chars.length)] = String.fromCharCode(this.int(128));
        return chars.join('');
      }
      case 3: return text.repeat(2 + this.int(Math.max(1, Math.floor(60_000 / Math.max(1, text.length)))));
      case 4: {
        const b = Buffer.from(text);
        b[this.int(b.length)] = 0xc0 + this.int(0x40); // a broken UTF-8 sequence
        return b;
      }
      case 5: return '['.repeat(this.int(5000)) + text;
      case 6: return this.rnd() < 0.2 ? text + ' '.repeat(1_100_000) : `${text}${text}`; // past the sockets' 1 MiB limit
      default: return JSON.stringify(text);
    }
  }

  /** Random bytes: empty, odd-sized, frame-sized, large. */
  binary(): Buffer {
    const len = this.pick([0, 1, 3, 159, 160, 161, 320, 640, 641, 3200, 6400, 32_001, 70_000, this.int(5000)]);
    return Buffer.from(Array.from({ length: len }, () => this.int(256)));
  }
}
