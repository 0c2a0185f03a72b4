/**
 * Shared pieces of the benchmark harness.
 *
 * A bench file (`bench/*.bench.ts`) runs in its own child process started by
 * `bench/run.ts`. It prints human progress on stdout as it likes, and each
 * measured figure as one line `@@result {json}` via `report()`. The runner
 * collects those lines, computes `ratio = value / baseline` and prints the table.
 */
import { performance } from 'node:perf_hooks';

export const RESULT_PREFIX = '@@result ';

/** A threshold a figure should meet; `unit` is only used for the printed target. */
export interface Target {
  op: '>=' | '<=';
  value: number;
  unit?: string;
}

/** What a bench file reports for one figure. */
export interface BenchResult {
  figure: string;
  value: number;
  unit: string;
  /** The same-run baseline measurement, or null when there is none. */
  baseline: number | null;
  /** Human-readable target, e.g. ">= 50000 cmd/s", or null. */
  target: string | null;
  /** Whether the target is met; null when there is no target. */
  met: boolean | null;
  /** Optional free-text note (definition of the figure, fallbacks taken, ...). */
  note?: string;
}

/** One row of `bench/results.json` (and of the printed table). */
export interface ResultRow {
  figure: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
  target: string | null;
  met: boolean | null;
}

export interface ReportInput {
  figure: string;
  value: number;
  unit: string;
  baseline?: number | null;
  target?: Target | null;
  note?: string;
}

export function formatTarget(t: Target): string {
  return `${t.op} ${t.value}${t.unit ? ` ${t.unit}` : ''}`;
}

export function meets(value: number, t: Target): boolean {
  if (!Number.isFinite(value)) return false;
  return t.op === '>=' ? value >= t.value : value <= t.value;
}

/** Emits one result line for the runner. */
export function report(input: ReportInput): BenchResult {
  const result: BenchResult = {
    figure: input.figure,
    value: input.value,
    unit: input.unit,
    baseline: input.baseline ?? null,
    target: input.target ? formatTarget(input.target) : null,
    met: input.target ? meets(input.value, input.target) : null,
  };
  if (input.note !== undefined) result.note = input.note;
  process.stdout.write(RESULT_PREFIX + JSON.stringify(result) + '\n');
  return result;
}

/** Parses a `@@result` line; returns null for any other line. */
export function parseResultLine(line: string): BenchResult | null {
  if (!line.startsWith(RESULT_PREFIX)) return null;
  const raw = JSON.parse(line.slice(RESULT_PREFIX.length)) as Partial<BenchResult>;
  if (typeof raw.figure !== 'string' || typeof raw.value !== 'number' || typeof raw.unit !== 'string') {
    throw new Error(`malformed result line: ${line}`);
  }
  return {
    figure: raw.figure,
    value: raw.value,
    unit: raw.unit,
    baseline: typeof raw.baseline === 'number' ? raw.baseline : null,
    target: typeof raw.target === 'string' ? raw.target : null,
    met: typeof raw.met === 'boolean' ? raw.met : null,
    ...(typeof raw.note === 'string' ? { note: raw.note } : {}),
  };
}

export function toRow(r: BenchResult): ResultRow {
  const ratio = r.baseline !== null && r.baseline !== 0 && Number.isFinite(r.value) ? r.value / r.baseline : null;
  return { figure: r.figure, value: r.value, unit: r.unit, baseline: r.baseline, ratio, target: r.target, met: r.met };
}

/**
 * The p-th percentile (0..100) of `samples`, nearest-rank method. Sorts a copy
 * unless `sorted` is true. NaN for an empty sample.
 */
export function percentile(samples: ArrayLike<number>, p: number, sorted = false): number {
  const n = samples.length;
  if (n === 0) return Number.NaN;
  const arr = sorted ? samples : Float64Array.from(samples).sort();
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return arr[rank - 1] as number;
}

/** A growable latency sample (ms) without per-sample allocation. */
export class Samples {
  private buf = new Float64Array(1024);
  private n = 0;

  push(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }

  pushAll(other: Samples): void {
    for (let i = 0; i < other.n; i++) this.push(other.buf[i] as number);
  }

  get length(): number {
    return this.n;
  }

  sorted(): Float64Array {
    return this.buf.slice(0, this.n).sort();
  }

  summary(): { n: number; p50: number; p99: number; max: number; mean: number } {
    const s = this.sorted();
    let sum = 0;
    for (const v of s) sum += v;
    return {
      n: this.n,
      p50: percentile(s, 50, true),
      p99: percentile(s, 99, true),
      max: this.n ? (s[this.n - 1] as number) : Number.NaN,
      mean: this.n ? sum / this.n : Number.NaN,
    };
  }
}

/**
 * The runner passes `npm run bench -- FILTER` on as BENCH_FILTER when the
 * filter did not name a file. A bench section calls `wanted(figures)` with the
 * figures it would report and may skip itself when none of them match.
 */
export function wanted(figures: readonly string[]): boolean {
  const filter = process.env.BENCH_FILTER;
  if (!filter) return true;
  return figures.some((f) => f.includes(filter));
}

export const now = (): number => performance.now();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Yields to the event loop (lets queued I/O and timers run). */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Runs a full GC when the process was started with --expose-gc (the runner does). */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
}

export function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

export function fmt(n: number, digits = 3): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1000) return Math.round(n).toLocaleString('en-US');
  if (abs >= 100) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(Math.min(digits, 2));
  return n.toPrecision(digits);
}
